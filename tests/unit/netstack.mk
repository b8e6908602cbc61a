# The guest's ring-3 network stack (guest/user/net.c) compiled for the host
# and tested against libslirp (dynamically linked: there is no libslirp.a;
# this binary is a test, not hvmm). Included by the top Makefile.
NETSTACK_DIR  := $(BUILD)/tests/unit/netstack
NETSTACK_TEST := $(BUILD)/tests/unit/test_netstack
# libslirp.pc requires glib-2.0.pc, which the runtime-only glib package lacks:
# fall back to the Debian paths.
NETSTACK_SLIRP_CFLAGS := $(shell pkg-config --cflags slirp 2>/dev/null || echo -I/usr/include/slirp)
NETSTACK_SLIRP_LIBS   := $(shell pkg-config --libs slirp 2>/dev/null || echo -lslirp)
NETSTACK_OBJS := $(NETSTACK_DIR)/net.o $(NETSTACK_DIR)/fake_vnet.o $(NETSTACK_DIR)/test_netstack.o

$(NETSTACK_DIR)/net.o: guest/user/net.c tests/unit/netstack.mk
	@mkdir -p $(dir $@)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) -c -o $@ $<

$(NETSTACK_DIR)/%.o: tests/unit/netstack/%.c tests/unit/netstack.mk
	@mkdir -p $(dir $@)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) $(NETSTACK_SLIRP_CFLAGS) -c -o $@ $<

$(NETSTACK_TEST): $(NETSTACK_OBJS)
	$(CC) $(HVMM_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(NETSTACK_SLIRP_LIBS) -lcmocka -lpthread

unit: $(NETSTACK_TEST)

-include $(NETSTACK_OBJS:.o=.d)
