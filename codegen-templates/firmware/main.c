/* {{BANNER}}
 * Firmware main: runs the model on the baked samples and prints every output value as the
 * hex bits of its IEEE-754 float32 (exact) over semihosting, then exits with 0. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "{{NAME}}.h"

extern void initialise_monitor_handles(void);

#define SAMPLES {{SAMPLES}}

{{INPUT_DATA}}
{{BUFFERS}}
static unsigned char arena[{{PREFIX}}_ARENA_BYTES] __attribute__((aligned({{PREFIX}}_ARENA_ALIGN)));

static void print_bits(const char *label, const float *v, unsigned n)
{
    printf("%s", label);
    for (unsigned i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &v[i], sizeof b);
        printf(" %08lx", (unsigned long)b);
    }
    printf("\n");
}

int main(void)
{
    initialise_monitor_handles();
    printf("modelless firmware {{NAME}}: %d samples, arena %u bytes\n", SAMPLES, (unsigned){{PREFIX}}_ARENA_BYTES);
    for (int s = 0; s < SAMPLES; s++) {
{{COPY_INPUTS}}
        if ({{NAME}}_run({{ARGS}}, arena) != 0) {
            printf("run failed\n");
            return 1;
        }
        printf("sample %d\n", s);
{{PRINT_OUTPUTS}}
    }
    printf("done\n");
    return 0;
}
