{{BANNER}}
#include "{{NAME}}.h"
{{RT_OPTIONS}}#include "modelless_rt.h"

/* ---- weights ---------------------------------------------------------- */
{{WEIGHTS}}
/* ---- kernels ---------------------------------------------------------- */
{{KERNELS}}
/* ---- entry point ------------------------------------------------------ */
int {{NAME}}_run({{PARAMS}})
{
{{BODY}}
    return 0;
}
