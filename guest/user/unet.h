/* unet: the ring-3 body of test=virtio-net-tcp (unet.c). */
#ifndef GUEST_UNET_H
#define GUEST_UNET_H

/* Set by the kernel from the command line before the task runs:
 * netport=PORT (default 8080), netbench=MIB (default 0: no bulk send). */
extern unsigned u_net_port, u_net_mib;
/* mode: VT_POLL or VT_IRQ (vtest.h). Prints its own TAP lines; 0 if all passed. */
long u_net(long mode);

#endif
