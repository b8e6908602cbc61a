/*
 * config_file: `--config-file FILE`, Firecracker's JSON description of a VM
 * (boot-source, drives, network-interfaces, machine-config, entropy), read
 * as the hvmm options it stands for. The options then go through the same
 * parser as the command line, so a value means the same and is checked the
 * same wherever it comes from, and command-line options given beside the
 * file add to it.
 */
#ifndef HVMM_CONFIG_FILE_H
#define HVMM_CONFIG_FILE_H

#include <stdbool.h>
#include <stddef.h>

/* The JSON text (len bytes) as hvmm options, appended to *argv (a NULL-
 * terminated, malloc'd array of malloc'd strings; *argc counts them). 0, or
 * -1 with a one-line reason naming the field in err. */
int config_file_parse(const char *json, size_t len, char ***argv, int *argc, char *err, size_t n);
/* text (len bytes) as one JSON object, nothing after it but white space —
 * what a description and an API body must be. NULL with *e saying why and,
 * for CONFIG_JSON_BAD, *detail json-c's reason ("" when it has none). */
enum config_json_err { CONFIG_JSON_OK, CONFIG_JSON_NOMEM, CONFIG_JSON_BAD, CONFIG_JSON_NOT_OBJECT };
struct json_object;
struct json_object *config_json_object(const char *text, size_t len, enum config_json_err *e, const char **detail);
/* Frees what config_file_parse made. */
void config_file_free(char **argv, int argc);

/* {"vms": [...]}: several VMs in one hvmm process (at most CONFIG_VMS_MAX),
 * each VM's options apart; a plain description is one VM (multi false). */
#define CONFIG_VMS_MAX 16
struct config_vms {
	int n;
	bool multi;
	char **argv[CONFIG_VMS_MAX];
	int argc[CONFIG_VMS_MAX];
};
/* 0, or -1 with the reason in err (a VM's reason prefixed vms[I]: ); *out
 * is filled as far as it got either way (config_file_free_vms frees it). */
int config_file_parse_vms(const char *json, size_t len, struct config_vms *out, char *err, size_t n);
void config_file_free_vms(struct config_vms *v);

/* The largest file read: a VM description is a few KiB. */
#define CONFIG_FILE_MAX (1u << 20)

#endif
