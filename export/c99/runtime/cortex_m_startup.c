/* cortex_m_startup.c: bare-metal start for Cortex-M boards under qemu-system-arm (mps2-an386: Cortex-M4,
 * code at 0x00000000, 4 MiB SRAM at 0x20000000; cortex_m.ld). The board boots from the vector table at
 * address 0 (initial stack pointer, reset handler); the reset handler copies .data, zeroes .bss, opens
 * newlib's semihosting handles (librdimon: stdio and files on the host) and runs main. A fault ends the
 * emulation with a failure status through semihosting instead of hanging. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack, end;
extern void initialise_monitor_handles(void);
extern int main(void);

void bpg_reset_handler(void);
void bpg_fault_handler(void);

#define BPG_PAINT 0xA5C3E10Fu

/* Built with BPG_RAM_REPORT="file": the RAM this run touched (static .data + .bss, and the heap and stack
 * high water: the words between the end of .bss and the top of RAM no longer holding the paint of the
 * reset), written to that file. */
static void ram_report(int status)
{
#ifdef BPG_RAM_REPORT
    const uint32_t *p;
    uint32_t untouched = 0;
    FILE *f;
    for (p = &end; (uintptr_t)p < (uintptr_t)&_estack; p++) untouched += *p == BPG_PAINT;
    f = fopen(BPG_RAM_REPORT, "w");
    if (f) {
        fprintf(f, "status %d static %lu heap+stack %lu total %lu of %lu\n", status,
                (unsigned long)((uintptr_t)&end - (uintptr_t)&_sdata),
                (unsigned long)((uintptr_t)&_estack - (uintptr_t)&end - 4u * untouched),
                (unsigned long)((uintptr_t)&_estack - (uintptr_t)&_sdata - 4u * untouched),
                (unsigned long)((uintptr_t)&_estack - (uintptr_t)&_sdata));
        fclose(f);
    }
#else
    (void)status;
#endif
}

void bpg_reset_handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    int status;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    for (dst = &end; (uintptr_t)dst < (uintptr_t)&_estack - 256u;) *dst++ = BPG_PAINT;   /* below this frame */
    initialise_monitor_handles();
    status = main();
    ram_report(status);
    exit(status);
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
