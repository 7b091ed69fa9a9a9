/* db_status — `ktlstun db status|migrate [-c FILE]`: the shared state store (state_store
 * in [global]) as a human sees it: the server it reached, the schema version against
 * this ktlstun's, each gateway with when it was last seen and the live second-factor
 * grants it published; or the creation or migration of the schema on demand. */
#ifndef KTLSTUN_DB_STATUS_H
#define KTLSTUN_DB_STATUS_H

/* Runs the subcommand (ARGV[0] is "db", ARGV[1] "status" or "migrate"). Returns the
 * exit status: 0 when the store answered (or state_store = file, for status) and its
 * schema is not newer than this ktlstun's; 1 when the configuration has errors, the
 * store cannot be reached, its schema is newer, or the migration failed (the reason on
 * standard error); 2 on a usage error. */
int db_status_command(int argc, char **argv);

#endif
