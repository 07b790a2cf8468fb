# platform.S — a Multiboot kernel that uses the PC platform the way kernels written for QEMU do:
# fw_cfg, the ACPI tables, the local APIC (IPIs, priorities, timer), the PM timer and the IOAPIC.
# Teaches: how a kernel finds and drives the interrupt hardware of a modern PC, step by step —
# every check prints one line, and any surprise prints "FAIL: ..." and exits with 0x14.
#
# Like a 64-bit kernel, it switches to long mode first (which is also what lets PVM-based KVM
# run it: PVM cannot return from interrupts in 32-bit protected mode). The page tables map the
# first 1 GiB 1:1 — code, data, the BIOS area and wherever firmware put the ACPI tables — and
# the top 2 GiB of the address space onto the APIC pages: an address like 0xFEE00000 written in
# an instruction is a sign-extended 32-bit displacement, 0xFFFFFFFFFEE00000, in 64-bit mode
# (the "kernel code model" trick), so the MMIO constants below are negative numbers.
#
# Interrupts come in through a 256-entry IDT: vectors 0-31 are exceptions (unexpected here:
# exit 0x11), vectors 32-255 go to small stubs that count each vector in irq_count[] and end
# it with an EOI. The 8259 PIC is masked throughout; every interrupt comes through the APIC.

    .include "pc.inc"
    .include "serial.inc"
    .include "multiboot.inc"

    MULTIBOOT_HEADER

.set KERNEL_CS,   0x08          # 64-bit code
.set KERNEL_DS,   0x10
.set KERNEL32_CS, 0x18          # 32-bit code, used only before the switch
.set PG_P,  1 << 0
.set PG_RW, 1 << 1
.set PG_PCD, 1 << 4             # cache disable: for the MMIO pages
.set PG_PS, 1 << 7              # a 2 MiB page
.set MSR_EFER, 0xC0000080
.set EFER_LME, 1 << 8

# ---- local APIC (xAPIC registers, memory-mapped at physical 0xFEE00000) -------------------
# -0x1200000 is 0xFEE00000 as a 32-bit displacement; in 64-bit mode it means 0xFFFFFFFFFEE00000,
# which the page tables map to the same physical page.
.set LAPIC,            -0x1200000
.set LAPIC_ID,         LAPIC + 0x020
.set LAPIC_VERSION,    LAPIC + 0x030
.set LAPIC_TPR,        LAPIC + 0x080   # task priority: block this class and below
.set LAPIC_PPR,        LAPIC + 0x0A0   # processor priority = max(TPR, class in service)
.set LAPIC_EOI,        LAPIC + 0x0B0
.set LAPIC_SVR,        LAPIC + 0x0F0   # spurious vector + software enable (bit 8)
.set LAPIC_ISR,        LAPIC + 0x100   # in service: 8 registers of 32 bits, 16 bytes apart
.set LAPIC_TMR,        LAPIC + 0x180   # trigger mode (level = 1)
.set LAPIC_IRR,        LAPIC + 0x200   # requested
.set LAPIC_ICR_LOW,    LAPIC + 0x300   # writing it sends an IPI
.set LAPIC_ICR_HIGH,   LAPIC + 0x310
.set LAPIC_LVT_TIMER,  LAPIC + 0x320
.set LAPIC_LVT_LINT0,  LAPIC + 0x350
.set LAPIC_LVT_LINT1,  LAPIC + 0x360
.set LAPIC_TIMER_INIT, LAPIC + 0x380
.set LAPIC_TIMER_CUR,  LAPIC + 0x390
.set LAPIC_TIMER_DIV,  LAPIC + 0x3E0
.set LVT_MASKED,       1 << 16
.set TIMER_PERIODIC,   1 << 17
.set TIMER_TSC_DEADLINE, 2 << 17
.set ICR_SELF,         1 << 18         # destination shorthand "self"

# ---- IOAPIC: select a register in IOREGSEL, then read/write it through IOWIN ---------------
.set IOAPIC_SEL,       -0x1400000      # 0xFEC00000
.set IOAPIC_WIN,       IOAPIC_SEL + 0x10
.set IOAPIC_VERSION,   0x01
.set IOAPIC_REDIR,     0x10            # entry n: registers 0x10 + 2n (low), 0x11 + 2n (high)
.set REDIR_LEVEL,      1 << 15
.set REDIR_REMOTE_IRR, 1 << 14

# ---- MSRs, fw_cfg, CPUID bits ------------------------------------------------------------
.set MSR_APIC_BASE,    0x1B
.set MSR_TSC_DEADLINE, 0x6E0
.set FW_CFG_SEL,       0x510
.set FW_CFG_DATA,      0x511
.set CPUID1_EDX_APIC,  1 << 9
.set CPUID1_ECX_X2APIC, 1 << 21
.set CPUID1_ECX_TSC_DEADLINE, 1 << 24

# Vectors used by the checks.
.set V_IPI,      0x40
.set V_TIMER,    0x41
.set V_DEADLINE, 0x42
.set V_X2IPI,    0x43
.set V_TPR,      0x45
.set V_CR8,      0x46
.set V_PIT,      0x50
.set V_UART,     0x51
.set V_SPURIOUS, 0xFF

.set EXIT_CHECK_FAILED, 0x14

# FAIL "text" — say what went wrong and stop with 0x14.
.macro FAIL text
    PRINT "FAIL: \text\n"
    EXIT EXIT_CHECK_FAILED
.endm

# EXPECT jcc, "text" — after a CMP/TEST: continue if the condition holds, else FAIL.
.macro EXPECT jcc, text
    \jcc .Lok\@
    FAIL "\text"
.Lok\@:
.endm

# COUNT vector — EAX = how many times the vector has been taken so far.
.macro COUNT vector
    mov irq_count + 4 * \vector(%rip), %eax
.endm

# TAKE_PENDING — open a short window for interrupts that are already pending. STI takes
# effect after the next instruction (the NOP); the OUT to the POST port then gives a hypervisor
# that interprets ring-0 code (PVM) a VM exit inside the window, where it can inject.
.macro TAKE_PENDING
    sti
    nop
    out %al, $0x80
    cli
.endm

    .code32
    .text
    .globl _start
_start:
    MULTIBOOT_ENTRY stack_top
    lgdt gdtr
    ljmp $KERNEL32_CS, $1f
1:  mov $KERNEL_DS, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    call serial_init32
    CHECK_MULTIBOOT_MAGIC 32
    mov $0x80000001, %eax
    cpuid
    test $(1 << 29), %edx       # long mode
    jnz 2f
    PRINT "this CPU cannot run 64-bit code\n", 32
    EXIT 0x11
2:  # PML4[0] -> PDPT[0] -> a page directory of 512 2 MiB pages: 0-1 GiB, identity-mapped.
    movl $(pdpt_low + PG_P + PG_RW), pml4
    movl $(pd_low + PG_P + PG_RW), pdpt_low
    mov $pd_low, %edi
    mov $(PG_P + PG_RW + PG_PS), %eax
3:  mov %eax, (%edi)
    add $0x200000, %eax
    add $8, %edi
    cmp $(pd_low + 4096), %edi
    jb 3b
    # PML4[511] -> PDPT[511] -> a page directory for the top 1 GiB; its entries 502 and 503
    # map 0xFFFFFFFFFEC00000 and 0xFFFFFFFFFEE00000 onto the IOAPIC and the local APIC.
    movl $(pdpt_high + PG_P + PG_RW), pml4 + 511 * 8
    movl $(pd_high + PG_P + PG_RW), pdpt_high + 511 * 8
    movl $(0xFEC00000 + PG_P + PG_RW + PG_PCD + PG_PS), pd_high + 502 * 8
    movl $(0xFEE00000 + PG_P + PG_RW + PG_PCD + PG_PS), pd_high + 503 * 8
    mov $pml4, %eax
    mov %eax, %cr3
    mov $(1 << 5), %eax         # CR4.PAE
    mov %eax, %cr4
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $(1 << 31), %eax         # paging on: long mode active
    mov %eax, %cr0
    ljmp $KERNEL_CS, $long_mode

    SERIAL_ROUTINES 32

# ==== 64-bit part: every check runs here ======================================================
# Data are addressed sym(%rip) (this ELF32 file cannot hold 64-bit absolute relocations);
# `sym(,%eax,4)` and `(%esi)` use 32-bit addresses, fine for everything below 1 GiB.
    .code64
long_mode:
    mov $KERNEL_DS, %ax
    mov %ax, %ss
    mov %ax, %ds
    mov %ax, %es
    mov $stack_top, %esp
    PRINT "platform: the PC as a QEMU-targeted kernel finds it (64-bit long mode)\n"
    call setup_idt
    OUTB PIC1_DATA, 0xFF        # mask every 8259 line: interrupts come through the APICs
    OUTB PIC2_DATA, 0xFF

    call check_cpuid
    call check_fw_cfg
    call check_acpi
    call check_lapic
    call check_self_ipi
    call check_tpr
    call check_cr8
    call check_timer_one_shot
    call check_timer_periodic
    call check_ioapic_edge
    call check_calibration
    call check_ioapic_level
    call check_tsc_deadline
    call check_x2apic
    PRINT "platform: all checks passed\n"
    EXIT 0x10

# ---- CPUID and IA32_APIC_BASE --------------------------------------------------------------
check_cpuid:
    mov $1, %eax
    cpuid
    mov %ecx, cpuid1_ecx(%rip)
    test $CPUID1_EDX_APIC, %edx
    EXPECT jnz, "CPUID.1:EDX.APIC is clear"
    PRINT "cpuid: local APIC present\n"
    mov $MSR_APIC_BASE, %ecx
    rdmsr
    mov %eax, %ebx
    and $0xFFFFF000, %eax
    cmp $LAPIC, %eax
    EXPECT je, "IA32_APIC_BASE does not point at 0xfee00000"
    test $(1 << 11), %ebx
    EXPECT jnz, "IA32_APIC_BASE: the APIC is disabled"
    test $(1 << 8), %ebx
    EXPECT jnz, "IA32_APIC_BASE: not the bootstrap processor"
    PRINT "apic base msr: 0xfee00000, enabled, bootstrap processor\n"
    ret

    .include "platform-firmware.inc"
# ---- local APIC basics ---------------------------------------------------------------------
check_lapic:
    mov LAPIC_ID, %eax
    shr $24, %eax
    EXPECT jz, "local APIC ID is not 0"
    mov LAPIC_VERSION, %eax
    cmp $0x14, %al
    EXPECT je, "local APIC version is not 0x14"
    shr $16, %eax
    cmp $5, %al
    EXPECT je, "local APIC does not have 6 LVT entries"
    # Software-enable with spurious vector 0xFF; mask LINT0 (the PIC) and LINT1 (NMI).
    movl $(0x100 | V_SPURIOUS), LAPIC_SVR
    movl $(LVT_MASKED | 0x700), LAPIC_LVT_LINT0
    movl $(LVT_MASKED | 0x400), LAPIC_LVT_LINT1
    movl $0, LAPIC_TPR
    mov LAPIC_SVR, %eax
    cmp $0x1FF, %eax
    EXPECT je, "spurious vector register does not read back 0x1ff"
    PRINT "lapic: id 0, version 0x14, 6 LVT entries, enabled with spurious vector 0xff\n"
    ret

# A fixed IPI to ourselves: IRR while interrupts are off, ISR while the handler has not sent
# the EOI, neither after it.
check_self_ipi:
    movb $1, defer_eoi(%rip)
    movl $0, LAPIC_ICR_HIGH
    movl $(ICR_SELF | V_IPI), LAPIC_ICR_LOW
    testl $1, LAPIC_IRR + 0x20  # vector 0x40 = bit 0 of IRR word 2
    EXPECT jnz, "self-IPI did not set IRR"
    TAKE_PENDING
    COUNT V_IPI
    cmp $1, %eax
    EXPECT je, "self-IPI was not delivered"
    testl $1, LAPIC_IRR + 0x20
    EXPECT jz, "IRR still set after delivery"
    testl $1, LAPIC_ISR + 0x20
    EXPECT jnz, "ISR not set while the handler has not sent EOI"
    cmpl $0x40, LAPIC_PPR
    EXPECT je, "PPR is not the class of the vector in service"
    movl $0, LAPIC_EOI
    testl $1, LAPIC_ISR + 0x20
    EXPECT jz, "ISR still set after EOI"
    movb $0, defer_eoi(%rip)
    PRINT "self-ipi: vector 0x40 went IRR -> ISR -> EOI, PPR followed\n"
    ret

# TPR = 0x50 blocks priority classes 0-5: vector 0x45 waits in IRR until TPR drops.
check_tpr:
    movl $0x50, LAPIC_TPR
    movl $(ICR_SELF | V_TPR), LAPIC_ICR_LOW
    TAKE_PENDING
    COUNT V_TPR
    test %eax, %eax
    EXPECT jz, "vector 0x45 was delivered despite TPR 0x50"
    testl $(1 << 5), LAPIC_IRR + 0x20
    EXPECT jnz, "vector 0x45 is not waiting in IRR"
    cmpl $0x50, LAPIC_PPR
    EXPECT je, "PPR does not follow TPR"
    movl $0, LAPIC_TPR
    TAKE_PENDING
    COUNT V_TPR
    cmp $1, %eax
    EXPECT je, "vector 0x45 was not delivered after TPR went to 0"
    PRINT "tpr: vector 0x45 held in IRR while TPR = 0x50, delivered at TPR 0\n"
    ret

# In 64-bit mode CR8 is the task priority's upper nibble: the same register, another door.
check_cr8:
    mov $5, %eax
    mov %rax, %cr8              # TPR = 0x50
    cmpl $0x50, LAPIC_TPR
    EXPECT je, "CR8 = 5 did not make TPR 0x50"
    movl $(ICR_SELF | V_CR8), LAPIC_ICR_LOW
    TAKE_PENDING
    COUNT V_CR8
    test %eax, %eax
    EXPECT jz, "vector 0x46 was delivered despite CR8 = 5"
    movl $0x20, LAPIC_TPR
    mov %cr8, %rax
    cmp $2, %rax
    EXPECT je, "CR8 does not read TPR bits 7:4"
    TAKE_PENDING
    COUNT V_CR8
    cmp $1, %eax
    EXPECT je, "vector 0x46 was not delivered at TPR 0x20"
    xor %eax, %eax
    mov %rax, %cr8
    PRINT "cr8: is TPR bits 7:4 (vector 0x46 held at CR8 = 5, taken at TPR 0x20)\n"
    ret

# ---- the local APIC timer ---------------------------------------------------------------------
# wait_for: EAX = vector, EBX = count to reach; HLT until the handler has counted that many.
wait_for:
1:  cmp %ebx, irq_count(,%eax,4)
    jae 2f
    sti
    hlt
    cli
    jmp 1b
2:  ret

check_timer_one_shot:
    movl $0x3, LAPIC_TIMER_DIV  # divide by 16
    movl $V_TIMER, LAPIC_LVT_TIMER
    # 6,250,000 x 16 bus clocks: 100 ms at QEMU's (and our) 1 GHz. Long enough that reading
    # the count back cannot miss it even on a busy host (QEMU's clock is the host's).
    movl $6250000, LAPIC_TIMER_INIT
    mov LAPIC_TIMER_CUR, %eax
    test %eax, %eax
    EXPECT jnz, "timer current count is 0 right after loading"
    cmp $6250000, %eax
    EXPECT jbe, "timer current count above the initial count"
    mov $V_TIMER, %eax
    mov $1, %ebx
    call wait_for
    cmpl $0, LAPIC_TIMER_CUR
    EXPECT je, "one-shot timer did not stay at 0"
    TAKE_PENDING
    COUNT V_TIMER
    cmp $1, %eax
    EXPECT je, "one-shot timer fired more than once"
    PRINT "timer one-shot: fired once, then the count stayed at 0\n"
    ret

check_timer_periodic:
    movl $(TIMER_PERIODIC | V_TIMER), LAPIC_LVT_TIMER
    movl $6250, LAPIC_TIMER_INIT  # every 100 us
    mov $V_TIMER, %eax
    mov $4, %ebx                # 1 from the one-shot + 3 periods
    call wait_for
    movl $(LVT_MASKED | TIMER_PERIODIC | V_TIMER), LAPIC_LVT_TIMER
    TAKE_PENDING                # an expiry latched in IRR before the mask is still delivered
    COUNT V_TIMER
    mov %eax, %ebx
    mov LAPIC_TIMER_CUR, %eax
    mov %eax, scratch(%rip)
    mov $1074, %ecx             # 300 us of PM timer: three periods, masked
    call pm_wait
    COUNT V_TIMER
    cmp %ebx, %eax
    EXPECT je, "masked timer still interrupted"
    mov LAPIC_TIMER_CUR, %eax
    cmp scratch(%rip), %eax
    EXPECT jne, "masked timer stopped counting"
    movl $0, LAPIC_TIMER_INIT   # stop it
    PRINT "timer periodic: 3 interrupts 100 us apart; masked in the LVT it counts on silently\n"
    ret

# pm_read: EAX = the PM timer. pm_wait: wait ECX PM ticks with interrupts enabled.
pm_read:
    mov pm_port(%rip), %edx
    in %dx, %eax
    and pm_mask(%rip), %eax
    ret
# (A million reads without reaching the count means the port does not count: a FAIL, not a hang.)
pm_wait:
    call pm_read
    mov %eax, %esi
    mov $1000000, %edi
    sti
1:  dec %edi
    jz 2f
    call pm_read
    sub %esi, %eax
    and pm_mask(%rip), %eax
    cmp %ecx, %eax
    jb 1b
    cli
    ret
2:  cli
    FAIL "the PM timer does not count"

# Calibrate the PM timer and the APIC timer against the PIT, the way kernels do: start PIT
# counter 0 (mode 0, 59659 ticks = 50 ms, interrupt at terminal count through IOAPIC input 2)
# together with the other two, sleep with HLT until the interrupt, then read all three in quick
# succession. In mode 0 the PIT keeps counting down after terminal count (from 0 to 0xFFFF,
# ...), so the latched count also tells how late we woke: PIT ticks = 59659 + (0x10000 - count).
# Wake-up latency (a busy host, a VMM's injection) therefore cancels out. Expected per PIT
# tick (1.193182 MHz): 3.0 PM ticks (3.579545 MHz) and 838 APIC timer ticks at divide 1 (a
# 1 GHz bus clock); both are accepted within +-5%. Like real kernels it tries up to three
# times, in case the host stalls between two of the reads.
check_calibration:
    movl $3, calibration_tries(%rip)
calibrate:
    mov $(IOAPIC_REDIR + 2 * 2), %eax
    mov $V_PIT, %edx            # input 2 unmasked again, edge, vector 0x50
    call ioapic_write
    movl $0xB, LAPIC_TIMER_DIV  # divide by 1
    movl $(LVT_MASKED | V_TIMER), LAPIC_LVT_TIMER
    mov $0x30, %al              # counter 0, low then high byte, mode 0
    out %al, $0x43
    mov $(59659 & 0xFF), %al
    out %al, $0x40
    COUNT V_PIT
    lea 1(%eax), %ebx           # wait_for: one more PIT interrupt
    call pm_read
    mov %eax, scratch(%rip)     # PM at the start
    movl $0xFFFFFFFF, LAPIC_TIMER_INIT
    mov $(59659 >> 8), %al
    out %al, $0x40              # the high byte starts the count
    mov $V_PIT, %eax
    call wait_for
    mov $0x00, %al              # latch counter 0
    out %al, $0x43
    mov LAPIC_TIMER_CUR, %ecx
    mov $0xFFFFFFFF, %ebx
    sub %ecx, %ebx              # EBX = APIC timer ticks
    movl $0, LAPIC_TIMER_INIT
    call pm_read
    sub scratch(%rip), %eax
    and pm_mask(%rip), %eax
    mov %eax, scratch(%rip)     # scratch = PM ticks
    in $0x40, %al
    mov %al, %cl
    in $0x40, %al
    mov %al, %ch
    movzwl %cx, %ecx
    neg %ecx
    and $0xFFFF, %ecx           # ticks since terminal count: (0x10000 - count) mod 0x10000
    add $59659, %ecx            # ECX = PIT ticks
    mov %ecx, scratch + 4(%rip)
    mov $(IOAPIC_REDIR + 2 * 2), %eax
    mov $(LVT_MASKED | V_PIT), %edx
    call ioapic_write
    # PM: 2.85 .. 3.15 per PIT tick.
    imul $57, %ecx, %eax
    shr $1, %eax
    mov $10, %esi
    xor %edx, %edx
    div %esi                    # EAX = PIT x 2.85
    cmp %eax, scratch(%rip)
    jb 1f
    imul $63, %ecx, %eax
    shr $1, %eax
    xor %edx, %edx
    div %esi                    # EAX = PIT x 3.15
    cmp %eax, scratch(%rip)
    ja 1f
    # APIC timer: 796 .. 880 per PIT tick.
    imul $796, %ecx, %eax
    cmp %eax, %ebx
    jb 2f
    imul $880, %ecx, %eax
    cmp %eax, %ebx
    jbe 3f
2:  decl calibration_tries(%rip)
    jnz calibrate
    FAIL "APIC timer not 1 GHz against the PIT"
1:  decl calibration_tries(%rip)
    jnz calibrate
    FAIL "PM timer not 3.579545 MHz against the PIT"
3:  PRINT "pm timer: 3.579545 MHz, measured against 50 ms of the PIT\n"
    PRINT "lapic timer: 1 GHz bus clock, measured against 50 ms of the PIT\n"
    ret

    .include "platform-ioapic.inc"
# ---- interrupts ----------------------------------------------------------------------------------
# 64-bit gates are 16 bytes: offset 15:0, selector, IST/type, offset 31:16, offset 63:32
# (zero here: the BSS is zeroed), reserved.
setup_idt:
    xor %ecx, %ecx
1:  mov $exception_entry, %eax
    cmp $32, %ecx
    jb 2f
    mov %ecx, %eax              # vectors 32-255: stub (vector - 32) of 16 bytes
    shl $4, %eax
    add $(irq_stubs - 32 * 16), %eax
2:  mov %ecx, %edi
    shl $4, %edi
    add $idt, %edi
    mov %ax, (%edi)             # offset 15:0
    movw $KERNEL_CS, 2(%edi)
    movw $0x8E00, 4(%edi)       # present, ring 0, 64-bit interrupt gate
    shr $16, %eax
    mov %ax, 6(%edi)            # offset 31:16
    inc %ecx
    cmp $256, %ecx
    jb 1b
    lidt idtr(%rip)
    ret

exception_entry:
    PRINT "FAIL: unexpected exception\n"
    EXIT 0x11

    .balign 16
irq_stubs:
.set vector, 32
.rept 224
    .balign 16
    pushq $vector
    jmp irq_common
.set vector, vector + 1
.endr

irq_common:
    push %rax
    push %rcx
    push %rdx
    mov 24(%rsp), %eax          # the vector its stub pushed
    and $0xFF, %eax
    incl irq_count(,%eax,4)
    cmp $V_SPURIOUS, %eax       # a spurious interrupt is not in service: no EOI
    je 2f
    cmpb $0, defer_eoi(%rip)          # some checks look at ISR before sending the EOI themselves
    jne 2f
    cmpb $0, x2apic_on(%rip)
    jne 1f
    movl $0, LAPIC_EOI
    jmp 2f
1:  mov $0x80B, %ecx            # x2APIC EOI register: write 0
    xor %eax, %eax
    xor %edx, %edx
    wrmsr
2:  pop %rdx
    pop %rcx
    pop %rax
    add $8, %rsp
    iretq

    SERIAL_ROUTINES

    .section .rodata
name_rsdp:   .asciz "etc/acpi/rsdp"
name_tables: .asciz "etc/acpi/tables"
name_loader: .asciz "etc/table-loader"

    .data
    .balign 8
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF    # 0x08: 64-bit code (L = 1), ring 0
    .quad 0x00CF92000000FFFF    # 0x10: data
    .quad 0x00CF9A000000FFFF    # 0x18: 32-bit code, for the way in
gdtr:
    .word gdtr - gdt - 1
    .long gdt
    .balign 8
idtr:
    .word 256 * 16 - 1
    .long idt, 0                # a 64-bit base (ELF32 cannot relocate a .quad)

    .bss
    .balign 4096
pml4:        .skip 4096
pdpt_low:    .skip 4096
pd_low:      .skip 4096
pdpt_high:   .skip 4096
pd_high:     .skip 4096
idt:         .skip 256 * 16
irq_count:   .skip 256 * 4
dir_entry:   .skip 64
scratch:     .skip 8
cpuid1_ecx:  .skip 4
rsdp_addr:   .skip 4
rsdt_addr:   .skip 4
rsdt_entries: .skip 4
madt_addr:   .skip 4
fadt_addr:   .skip 4
madt_cpus:   .skip 4
madt_ioapic: .skip 4
madt_gsi_base: .skip 4
irq0_gsi:    .skip 4
pm_port:     .skip 4
pm_mask:     .skip 4
calibration_tries: .skip 4
rsdp_select: .skip 2
files_found: .skip 1
defer_eoi:   .skip 1
x2apic_on:   .skip 1
    .balign 16
    .skip 8192
stack_top:
