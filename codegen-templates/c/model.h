{{BANNER}}
#ifndef {{GUARD}}
#define {{GUARD}}

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element counts of the input and output tensors (row-major, the model's own layout). */
{{LEN_DEFINES}}

/* Size in bytes and required alignment of the caller-owned scratch arena. */
#define {{PREFIX}}_ARENA_BYTES {{ARENA_BYTES}}
#define {{PREFIX}}_ARENA_ALIGN {{ARENA_ALIGN}}

/*
 * Runs the model once: reads the inputs, writes the outputs, uses `arena`
 * ({{PREFIX}}_ARENA_BYTES bytes, aligned to {{PREFIX}}_ARENA_ALIGN) as scratch.
 * No allocation, no global state: calls with distinct arenas may run concurrently.
 * Returns 0.
 */
int {{NAME}}_run({{PARAMS}});

#ifdef __cplusplus
}
#endif

#endif /* {{GUARD}} */
