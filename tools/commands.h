/* The subcommands of the strata command. Each lives in tools/cmd_NAME.c,
 * parses its own flags (with --help), calls the library and prints. Each
 * returns the process exit status: 0 success, 1 error (a message on stderr),
 * 2 bad usage. */
#ifndef STRATA_TOOLS_COMMANDS_H
#define STRATA_TOOLS_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_chat(int argc, char **argv);

#endif
