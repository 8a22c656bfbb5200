/* cortex_m_startup.c: bare-metal start for Cortex-M boards under qemu-system-arm (mps2-an386: Cortex-M4,
 * code at 0x00000000, 4 MiB SRAM at 0x20000000; cortex_m.ld). The board boots from the vector table at
 * address 0 (initial stack pointer, reset handler); the reset handler copies .data, zeroes .bss, opens
 * newlib's semihosting handles (librdimon: stdio and files on the host) and runs main. A fault ends the
 * emulation with a failure status through semihosting instead of hanging. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void initialise_monitor_handles(void);
extern int main(void);

void bpg_reset_handler(void);
void bpg_fault_handler(void);

void bpg_reset_handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    initialise_monitor_handles();
    exit(main());
}

/* Semihosting SYS_EXIT (0x18) with ADP_Stopped_RunTimeErrorUnknown (0x20023): qemu exits with status 1. */
void bpg_fault_handler(void)
{
    __asm__ volatile("mov r0, #0x18\n\tldr r1, =0x20023\n\tbkpt 0xab" ::: "r0", "r1", "memory");
    for (;;) {
    }
}

typedef void (*bpg_vector)(void);
__attribute__((section(".isr_vector"), used)) const bpg_vector bpg_vectors[16] = {
    (bpg_vector)(uintptr_t)&_estack, bpg_reset_handler,
    /* NMI, HardFault, MemManage, BusFault, UsageFault, 4 reserved, SVC, DebugMon, reserved, PendSV, SysTick */
    bpg_fault_handler, bpg_fault_handler, bpg_fault_handler, bpg_fault_handler, bpg_fault_handler, 0, 0, 0, 0,
    bpg_fault_handler, bpg_fault_handler, 0, bpg_fault_handler, bpg_fault_handler,
};
