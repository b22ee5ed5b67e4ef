/* noop_shim.c: an empty shared object preloaded in place of libdriftwatch.so by the run tests,
 * so that they exercise LD_PRELOAD for real without depending on the shim being built. */
int driftwatch_noop_shim_marker = 1;
