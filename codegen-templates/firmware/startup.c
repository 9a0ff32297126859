/* {{BANNER}}
 * Startup for a bare-metal Cortex-M image: vector table, reset handler (FPU on, .data
 * copied, .bss zeroed, main, exit over semihosting), fault handler. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

void Reset_Handler(void);
void Fault_Handler(void);

typedef void (*vector_fn)(void);

/* Initial stack pointer, reset, then NMI .. SysTick: every exception stops the run. */
__attribute__((section(".vectors"), used)) const vector_fn vector_table[16] = {
    (vector_fn)(uintptr_t)&_estack, Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0,
    Fault_Handler, Fault_Handler,
};

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* CPACR: full access to CP10/CP11, before the first floating-point instruction. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    exit(main());
}

/* Any fault: report an error to the debugger (semihosting SYS_EXIT, reason
 * ADP_Stopped_InternalError), so QEMU exits non-zero instead of hanging. */
void Fault_Handler(void)
{
    register uint32_t op __asm("r0") = 0x18u;
    register uint32_t reason __asm("r1") = 0x20024u;
    __asm volatile("bkpt 0xab" : : "r"(op), "r"(reason) : "memory");
    for (;;) {
    }
}

/* No C++ constructors here; newlib's exit path wants the symbols. */
void _init(void) {}
void _fini(void) {}
