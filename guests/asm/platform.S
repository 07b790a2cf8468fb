# platform.S — a Multiboot kernel that uses the PC platform the way kernels written for QEMU do:
# fw_cfg, the ACPI tables, the local APIC (IPIs, priorities, timer), the PM timer and the IOAPIC.
# Teaches: how a kernel finds and drives the interrupt hardware of a modern PC, step by step —
# every check prints one line, and any surprise prints "FAIL: ..." and exits with 0x14.
#
# It stays in 32-bit protected mode without paging: the APIC registers are plain physical
# addresses then (0xFEE00000 and 0xFEC00000), and so are the ACPI tables. Interrupts come in
# through a 256-entry IDT: vectors 0-31 are exceptions (unexpected here: exit 0x11), vectors
# 32-255 go to small stubs that count each vector in irq_count[] and end it with an EOI.
# The 8259 PIC is masked throughout; every interrupt comes through the local APIC.

    .include "pc.inc"
    .include "serial.inc"
    .include "multiboot.inc"
    .include "gdt32.inc"

    MULTIBOOT_HEADER

# ---- local APIC (xAPIC registers, memory-mapped) ------------------------------------------
.set LAPIC,            0xFEE00000
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
.set IOAPIC_SEL,       0xFEC00000
.set IOAPIC_WIN,       0xFEC00010
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
    mov irq_count + 4 * \vector, %eax
.endm

# TAKE_PENDING — open a one-instruction window for interrupts that are already pending
# (STI takes effect after the next instruction, so the NOP is where they arrive).
.macro TAKE_PENDING
    sti
    nop
    cli
.endm

    .code32
    .text
    .globl _start
_start:
    MULTIBOOT_ENTRY stack_top
    LOAD_FLAT_GDT
    call serial_init
    CHECK_MULTIBOOT_MAGIC
    PRINT "platform: the PC as a QEMU-targeted kernel finds it\n"
    call setup_idt
    OUTB PIC1_DATA, 0xFF        # mask every 8259 line: interrupts come through the APICs
    OUTB PIC2_DATA, 0xFF

    call check_cpuid
    call check_fw_cfg
    call check_acpi
    call check_lapic
    call check_self_ipi
    call check_tpr
    call check_timer_one_shot
    call check_timer_periodic
    call check_calibration
    call check_ioapic_edge
    call check_ioapic_level
    call check_tsc_deadline
    call check_x2apic
    PRINT "platform: all checks passed\n"
    EXIT 0x10

# ---- CPUID and IA32_APIC_BASE --------------------------------------------------------------
check_cpuid:
    mov $1, %eax
    cpuid
    mov %ecx, cpuid1_ecx
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

# ---- fw_cfg ----------------------------------------------------------------------------------
# fw_cfg_select: AX = selector. fw_cfg_read: ECX bytes (> 0) from the data port to EDI.
fw_cfg_select:
    mov $FW_CFG_SEL, %dx
    out %ax, %dx
    ret
fw_cfg_read:
    mov $FW_CFG_DATA, %dx
1:  in %dx, %al
    mov %al, (%edi)
    inc %edi
    loop 1b
    ret

check_fw_cfg:
    mov $0x00, %ax              # FW_CFG_SIGNATURE
    call fw_cfg_select
    mov $scratch, %edi
    mov $4, %ecx
    call fw_cfg_read
    cmpl $0x554D4551, scratch   # "QEMU"
    EXPECT je, "fw_cfg signature is not QEMU"
    mov $0x01, %ax              # FW_CFG_ID: bit 0 = this port interface
    call fw_cfg_select
    mov $scratch, %edi
    mov $4, %ecx
    call fw_cfg_read
    testb $1, scratch
    EXPECT jnz, "fw_cfg ID lacks the traditional interface bit"
    mov $0x05, %ax              # FW_CFG_NB_CPUS (16 bits)
    call fw_cfg_select
    movl $0, scratch
    mov $scratch, %edi
    mov $2, %ecx
    call fw_cfg_read
    cmpl $1, scratch
    EXPECT je, "fw_cfg does not report exactly one CPU"
    PRINT "fw_cfg: signature QEMU, port interface, 1 cpu\n"

    # The file directory (selector 0x19): a big-endian count, then 64-byte entries.
    mov $0x19, %ax
    call fw_cfg_select
    mov $scratch, %edi
    mov $4, %ecx
    call fw_cfg_read
    mov scratch, %ebx
    bswap %ebx                  # EBX = number of files
    test %ebx, %ebx
    EXPECT jnz, "fw_cfg file directory is empty"
next_file:
    mov $dir_entry, %edi        # size (BE 32), select (BE 16), reserved, name[56]
    mov $64, %ecx
    call fw_cfg_read
    mov $name_rsdp, %esi
    call dir_entry_is
    jne 1f
    mov dir_entry + 4, %ax
    xchg %al, %ah
    mov %ax, rsdp_select
    orb $1, files_found
1:  mov $name_tables, %esi
    call dir_entry_is
    jne 2f
    orb $2, files_found
2:  mov $name_loader, %esi
    call dir_entry_is
    jne 3f
    orb $4, files_found
3:  dec %ebx
    jnz next_file
    cmpb $7, files_found
    EXPECT je, "fw_cfg lacks etc/acpi/rsdp, etc/acpi/tables or etc/table-loader"
    mov rsdp_select, %ax
    call fw_cfg_select
    mov $scratch, %edi
    mov $8, %ecx
    call fw_cfg_read
    cmpl $0x20445352, scratch   # "RSD "
    EXPECT je, "etc/acpi/rsdp does not start with RSD PTR"
    cmpl $0x20525450, scratch + 4  # "PTR "
    EXPECT je, "etc/acpi/rsdp does not start with RSD PTR"
    PRINT "fw_cfg: files etc/acpi/rsdp (an RSDP), etc/acpi/tables, etc/table-loader\n"
    ret

# dir_entry_is: ESI = a NUL-terminated name; ZF = 1 if the directory entry has that name.
dir_entry_is:
    mov $dir_entry + 8, %edi
1:  mov (%esi), %al
    cmp (%edi), %al
    jne 2f
    inc %esi
    inc %edi
    test %al, %al
    jnz 1b
2:  ret

# ---- ACPI ------------------------------------------------------------------------------------
# sum_bytes: ESI = address, ECX = length (> 0) -> AL = byte sum. Keeps ESI and ECX.
sum_bytes:
    push %esi
    push %ecx
    xor %eax, %eax
1:  add (%esi), %al
    inc %esi
    loop 1b
    pop %ecx
    pop %esi
    ret

# check_table: ESI = table, EAX = signature -> ZF = 1 if the signature matches and the bytes
# (length from the header) sum to zero.
check_table:
    cmp (%esi), %eax
    jne 1f
    mov 4(%esi), %ecx
    cmp $36, %ecx
    jb 1f
    call sum_bytes
    test %al, %al
1:  ret

check_acpi:
    # 1. The RSDP: "RSD PTR " on a 16-byte boundary in the BIOS area, first 20 bytes sum to 0.
    mov $0xE0000, %esi
1:  cmpl $0x20445352, (%esi)
    jne 2f
    cmpl $0x20525450, 4(%esi)
    jne 2f
    mov $20, %ecx
    call sum_bytes
    test %al, %al
    jz 3f
2:  add $16, %esi
    cmp $0x100000, %esi
    jb 1b
    FAIL "no RSDP in 0xe0000-0xfffff"
3:  mov %esi, rsdp_addr
    # 2. The RSDT it points to, and the tables it lists.
    mov 16(%esi), %esi
    mov %esi, rsdt_addr
    mov $0x54445352, %eax       # "RSDT"
    call check_table
    EXPECT je, "RSDT signature or checksum is wrong"
    mov 4(%esi), %ecx
    sub $36, %ecx
    shr $2, %ecx                # ECX = entries
    test %ecx, %ecx
    EXPECT jnz, "RSDT lists no tables"
    mov %ecx, rsdt_entries
    lea 36(%esi), %ebx
4:  mov (%ebx), %esi
    mov $0x43495041, %eax       # "APIC": the MADT
    call check_table
    jne 5f
    mov %esi, madt_addr
5:  mov (%ebx), %esi
    mov $0x50434146, %eax       # "FACP": the FADT
    call check_table
    jne 6f
    mov %esi, fadt_addr
6:  add $4, %ebx
    decl rsdt_entries
    jnz 4b
    cmpl $0, madt_addr
    EXPECT jne, "no valid MADT (APIC) in the RSDT"
    cmpl $0, fadt_addr
    EXPECT jne, "no valid FADT (FACP) in the RSDT"
    call check_xsdt
    PRINT "acpi: RSDP in the BIOS area, RSDT with valid MADT and FADT\n"
    call check_madt
    call check_fadt
    ret

# An ACPI 2.0 RSDP (revision >= 2) also points to an XSDT; it must list the same tables.
# (QEMU's pc machine has an ACPI 1.0 RSDP and no XSDT; then there is nothing to check.)
check_xsdt:
    mov rsdp_addr, %esi
    cmpb $2, 15(%esi)
    jb 9f
    mov 20(%esi), %ecx          # the extended checksum covers `length` bytes
    call sum_bytes
    test %al, %al
    EXPECT jz, "RSDP extended checksum is wrong"
    cmpl $0, 28(%esi)
    EXPECT je, "XSDT above 4 GiB"
    mov 24(%esi), %esi
    mov $0x54445358, %eax       # "XSDT"
    call check_table
    EXPECT je, "XSDT signature or checksum is wrong"
    mov 4(%esi), %ecx
    sub $36, %ecx
    shr $3, %ecx
    mov rsdt_addr, %edi
    mov 4(%edi), %eax
    sub $36, %eax
    shr $2, %eax
    cmp %eax, %ecx
    EXPECT je, "XSDT and RSDT list different numbers of tables"
    test %ecx, %ecx
    EXPECT jnz, "XSDT lists no tables"
    add $36, %esi
    add $36, %edi
1:  mov (%esi), %eax
    cmp (%edi), %eax
    EXPECT je, "XSDT and RSDT list different tables"
    cmpl $0, 4(%esi)
    EXPECT je, "XSDT entry above 4 GiB"
    add $8, %esi
    add $4, %edi
    loop 1b
9:  ret

check_madt:
    mov madt_addr, %esi
    cmpl $LAPIC, 36(%esi)
    EXPECT je, "MADT local APIC address is not 0xfee00000"
    mov 4(%esi), %edi
    add %esi, %edi              # EDI = end of the table
    add $44, %esi               # first entry
    movl $0xFFFFFFFF, irq0_gsi
1:  cmp %edi, %esi
    jae 8f
    movzbl (%esi), %eax         # type
    cmp $0, %eax
    jne 2f
    testb $1, 4(%esi)           # processor local APIC: enabled?
    jz 7f
    incl madt_cpus
    cmpb $0, 3(%esi)
    EXPECT je, "the enabled local APIC does not have APIC ID 0"
    jmp 7f
2:  cmp $1, %eax                # I/O APIC: address and GSI base
    jne 3f
    mov 4(%esi), %eax
    mov %eax, madt_ioapic
    mov 8(%esi), %eax
    mov %eax, madt_gsi_base
    jmp 7f
3:  cmp $2, %eax                # interrupt source override
    jne 7f
    cmpb $0, 3(%esi)
    jne 7f
    mov 4(%esi), %eax
    mov %eax, irq0_gsi
7:  movzbl 1(%esi), %eax        # next entry
    test %eax, %eax
    EXPECT jnz, "MADT entry of length 0"
    add %eax, %esi
    jmp 1b
8:  cmpl $1, madt_cpus
    EXPECT je, "MADT does not list exactly one enabled local APIC"
    cmpl $0xFEC00000, madt_ioapic
    EXPECT je, "MADT has no IOAPIC at 0xfec00000"
    cmpl $0, madt_gsi_base
    EXPECT je, "MADT IOAPIC GSI base is not 0"
    cmpl $2, irq0_gsi
    EXPECT je, "MADT does not override IRQ 0 to GSI 2"
    PRINT "acpi: madt: 1 local APIC (id 0), IOAPIC at 0xfec00000 (GSI base 0), IRQ 0 -> GSI 2\n"
    ret

check_fadt:
    mov fadt_addr, %esi
    mov 76(%esi), %eax          # PM_TMR_BLK: the PM timer's I/O port
    test %eax, %eax
    EXPECT jnz, "FADT has no PM timer port"
    mov %eax, pm_port
    movl $0xFFFFFF, pm_mask
    testl $(1 << 8), 112(%esi)  # TMR_VAL_EXT: 32-bit counter
    jz 1f
    movl $0xFFFFFFFF, pm_mask
1:  PRINT "acpi: fadt: PM timer at port 0x"
    mov pm_port, %eax
    mov $3, %ecx
    call serial_hex
    cmpl $0xFFFFFF, pm_mask
    jne 2f
    PRINT ", 24-bit\n"
    jmp 3f
2:  PRINT ", 32-bit\n"
3:  mov fadt_addr, %esi
    mov 36(%esi), %esi          # FIRMWARE_CTRL: the FACS (no checksum, just a signature)
    cmpl $0x53434146, (%esi)    # "FACS"
    EXPECT je, "FADT does not point at a FACS"
    mov fadt_addr, %esi
    mov 40(%esi), %esi          # DSDT
    mov $0x54445344, %eax       # "DSDT"
    call check_table
    EXPECT je, "DSDT signature or checksum is wrong"
    PRINT "acpi: fadt: FACS and DSDT present, DSDT checksum valid\n"
    ret

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
    movb $1, defer_eoi
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
    movb $0, defer_eoi
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
    movl $62500, LAPIC_TIMER_INIT  # 62500 x 16 bus clocks: 1 ms at QEMU's (and our) 1 GHz
    mov LAPIC_TIMER_CUR, %eax
    test %eax, %eax
    EXPECT jnz, "timer current count is 0 right after loading"
    cmp $62500, %eax
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
    COUNT V_TIMER
    mov %eax, %ebx
    mov LAPIC_TIMER_CUR, %eax
    mov %eax, scratch
    mov $1074, %ecx             # 300 us of PM timer: three periods, masked
    call pm_wait
    COUNT V_TIMER
    cmp %ebx, %eax
    EXPECT je, "masked timer still interrupted"
    mov LAPIC_TIMER_CUR, %eax
    cmp scratch, %eax
    EXPECT jne, "masked timer stopped counting"
    movl $0, LAPIC_TIMER_INIT   # stop it
    PRINT "timer periodic: 3 interrupts 100 us apart; masked in the LVT it counts on silently\n"
    ret

# pm_read: EAX = the PM timer. pm_wait: wait ECX PM ticks with interrupts enabled.
pm_read:
    mov pm_port, %edx
    in %dx, %eax
    and pm_mask, %eax
    ret
pm_wait:
    call pm_read
    mov %eax, %esi
    sti
1:  call pm_read
    sub %esi, %eax
    and pm_mask, %eax
    cmp %ecx, %eax
    jb 1b
    cli
    ret

# Time PIT counter 2 for 5 ms (5966 ticks of 1.193182 MHz) with the PM timer and the APIC timer,
# the way kernels calibrate their clocks. PM: 17898 ticks expected; APIC timer at divide 1:
# 5,000,000 bus clocks (1 GHz). Both are accepted within +-5%.
check_calibration:
    in $0x61, %al
    and $0xFC, %al              # counter 2 gate off, speaker off
    out %al, $0x61
    mov $0xB0, %al              # counter 2, low then high byte, mode 0 (interrupt on terminal count)
    out %al, $0x43
    mov $(5966 & 0xFF), %al
    out %al, $0x42
    mov $(5966 >> 8), %al
    out %al, $0x42
    movl $0xB, LAPIC_TIMER_DIV  # divide by 1
    movl $(LVT_MASKED | V_TIMER), LAPIC_LVT_TIMER
    call pm_read
    mov %eax, %ebx
    movl $0xFFFFFFFF, LAPIC_TIMER_INIT
    in $0x61, %al
    or $1, %al                  # gate on: counting starts
    out %al, $0x61
1:  in $0x61, %al               # OUT2 (bit 5) rises at terminal count
    test $0x20, %al
    jz 1b
    mov LAPIC_TIMER_CUR, %ecx
    call pm_read
    sub %ebx, %eax
    and pm_mask, %eax
    mov $0xFFFFFFFF, %ebx
    sub %ecx, %ebx              # EBX = APIC timer ticks (PRINT keeps EBX)
    movl $0, LAPIC_TIMER_INIT
    cmp $17003, %eax
    EXPECT jae, "PM timer too slow against the PIT"
    cmp $18793, %eax
    EXPECT jbe, "PM timer too fast against the PIT"
    PRINT "pm timer: 3.579545 MHz, measured against PIT counter 2\n"
    mov %ebx, %eax
    cmp $4750000, %eax
    EXPECT jae, "APIC timer slower than 1 GHz against the PIT"
    cmp $5250000, %eax
    EXPECT jbe, "APIC timer faster than 1 GHz against the PIT"
    PRINT "lapic timer: 1 GHz bus clock, measured against PIT counter 2\n"
    ret

# ---- IOAPIC ------------------------------------------------------------------------------------
# ioapic_write: EAX = register, EDX = value. ioapic_read: EAX = register -> EAX.
ioapic_write:
    mov %eax, IOAPIC_SEL
    mov %edx, IOAPIC_WIN
    ret
ioapic_read:
    mov %eax, IOAPIC_SEL
    mov IOAPIC_WIN, %eax
    ret

# The PIT's IRQ 0 reaches IOAPIC input 2 (the MADT said so): route it, edge-triggered, to 0x50.
check_ioapic_edge:
    mov $IOAPIC_VERSION, %eax
    call ioapic_read
    cmp $0x20, %al
    EXPECT je, "IOAPIC version is not 0x20"
    shr $16, %eax
    cmp $23, %al
    EXPECT je, "IOAPIC does not have 24 inputs"
    mov $(IOAPIC_REDIR + 2 * 2 + 1), %eax
    xor %edx, %edx              # destination: APIC ID 0
    call ioapic_write
    mov $(IOAPIC_REDIR + 2 * 2), %eax
    mov $V_PIT, %edx            # fixed, physical, edge, active high, unmasked
    call ioapic_write
    mov $0x34, %al              # PIT counter 0, mode 2 (rate generator), 1 kHz
    out %al, $0x43
    mov $(1193 & 0xFF), %al
    out %al, $0x40
    mov $(1193 >> 8), %al
    out %al, $0x40
    mov $V_PIT, %eax
    mov $3, %ebx
    call wait_for
    mov $(IOAPIC_REDIR + 2 * 2), %eax
    mov $(LVT_MASKED | V_PIT), %edx  # mask input 2 again
    call ioapic_write
    mov $0x30, %al              # counter 0 to mode 0 without a count: it stops
    out %al, $0x43
    PRINT "ioapic: version 0x20, 24 inputs; PIT IRQ 0 arrived on GSI 2 as vector 0x50\n"
    ret

# The UART's IRQ 4, level-triggered: remote IRR stays set until the EOI reaches the IOAPIC
# (the local APIC broadcasts EOIs of vectors whose TMR bit is set).
check_ioapic_level:
    movb $1, defer_eoi
    mov $(IOAPIC_REDIR + 2 * 4 + 1), %eax
    xor %edx, %edx
    call ioapic_write
    mov $(IOAPIC_REDIR + 2 * 4), %eax
    mov $(REDIR_LEVEL | V_UART), %edx
    call ioapic_write
    OUTB COM1_MCR, 0x0B         # DTR, RTS, OUT2 (the PC's interrupt enable for the UART)
    OUTB COM1_IER, 0x02         # interrupt when the transmitter is empty — it is, right now
    TAKE_PENDING
    COUNT V_UART
    cmp $1, %eax
    EXPECT je, "UART interrupt did not arrive through the IOAPIC"
    OUTB COM1_IER, 0x00         # silence the UART: its line goes low
    mov $(COM1 + 2), %dx
    in %dx, %al                 # reading IIR acknowledges "transmitter empty"
    mov $(IOAPIC_REDIR + 2 * 4), %eax
    call ioapic_read
    test $REDIR_REMOTE_IRR, %eax
    EXPECT jnz, "remote IRR not set for the level-triggered input"
    testl $(1 << (V_UART - 64)), LAPIC_TMR + 0x20
    EXPECT jnz, "TMR bit not set for the level-triggered vector"
    movl $0, LAPIC_EOI
    mov $(IOAPIC_REDIR + 2 * 4), %eax
    call ioapic_read
    test $REDIR_REMOTE_IRR, %eax
    EXPECT jz, "remote IRR still set after the EOI"
    TAKE_PENDING
    COUNT V_UART
    cmp $1, %eax
    EXPECT je, "level interrupt repeated after its line went low"
    mov $(IOAPIC_REDIR + 2 * 4), %eax
    mov $(LVT_MASKED | REDIR_LEVEL | V_UART), %edx
    call ioapic_write
    movb $0, defer_eoi
    PRINT "ioapic: UART IRQ 4 level-triggered as vector 0x51: TMR set, remote IRR until EOI\n"
    ret

# ---- TSC-deadline timer and x2APIC, when CPUID offers them ----------------------------------
check_tsc_deadline:
    testl $CPUID1_ECX_TSC_DEADLINE, cpuid1_ecx
    jnz 1f
    PRINT "tsc-deadline: not offered by CPUID\n"
    ret
1:  movl $(TIMER_TSC_DEADLINE | V_DEADLINE), LAPIC_LVT_TIMER
    rdtsc
    add $100000, %eax           # 100 us of a 1 GHz TSC from now
    adc $0, %edx
    mov $MSR_TSC_DEADLINE, %ecx
    wrmsr
    rdmsr
    or %edx, %eax
    EXPECT jnz, "IA32_TSC_DEADLINE does not read back"
    mov $V_DEADLINE, %eax
    mov $1, %ebx
    call wait_for
    mov $MSR_TSC_DEADLINE, %ecx
    rdmsr
    or %edx, %eax
    EXPECT jz, "IA32_TSC_DEADLINE not cleared after it fired"
    movl $(LVT_MASKED | V_TIMER), LAPIC_LVT_TIMER
    PRINT "tsc-deadline: fired at the deadline, then IA32_TSC_DEADLINE read 0\n"
    ret

check_x2apic:
    testl $CPUID1_ECX_X2APIC, cpuid1_ecx
    jnz 1f
    PRINT "x2apic: not offered by CPUID\n"
    ret
1:  mov $MSR_APIC_BASE, %ecx
    rdmsr
    or $(1 << 10), %eax         # EXTD: x2APIC mode (EN stays set)
    wrmsr
    movb $1, x2apic_on
    mov $0x802, %ecx            # ID
    rdmsr
    test %eax, %eax
    EXPECT jz, "x2APIC ID is not 0"
    mov $0x803, %ecx            # version
    rdmsr
    cmp $0x14, %al
    EXPECT je, "x2APIC version is not 0x14"
    mov $0x80F, %ecx            # SVR survives the switch
    rdmsr
    cmp $0x1FF, %eax
    EXPECT je, "SVR changed when entering x2APIC mode"
    mov $0x83F, %ecx            # SELF IPI register
    mov $V_X2IPI, %eax
    xor %edx, %edx
    wrmsr
    mov $0x822, %ecx            # IRR word 2
    rdmsr
    test $(1 << (V_X2IPI - 64)), %eax
    EXPECT jnz, "x2APIC self-IPI did not set IRR"
    TAKE_PENDING                # the handler ends it with WRMSR 0x80B
    COUNT V_X2IPI
    cmp $1, %eax
    EXPECT je, "x2APIC self-IPI was not delivered"
    mov $0x812, %ecx            # ISR word 2
    rdmsr
    test $(1 << (V_X2IPI - 64)), %eax
    EXPECT jz, "ISR still set after the x2APIC EOI"
    # Leave x2APIC mode the only legal way: disable the APIC, then enable it in xAPIC mode.
    mov $MSR_APIC_BASE, %ecx
    rdmsr
    and $~0xC00, %eax
    wrmsr
    or $0x800, %eax
    wrmsr
    movb $0, x2apic_on
    PRINT "x2apic: MSRs 0x802/0x803 read id 0 and version 0x14; self-IPI 0x83f, EOI 0x80b\n"
    ret

# ---- interrupts ----------------------------------------------------------------------------------
setup_idt:
    xor %ecx, %ecx
1:  mov $exception_entry, %eax
    cmp $32, %ecx
    jb 2f
    mov %ecx, %eax              # vectors 32-255: stub (vector - 32) of 16 bytes
    shl $4, %eax
    add $(irq_stubs - 32 * 16), %eax
2:  mov %ax, idt(,%ecx,8)       # offset 15:0
    movw $CODE_SEL, idt + 2(,%ecx,8)
    movw $0x8E00, idt + 4(,%ecx,8)  # present, ring 0, 32-bit interrupt gate
    shr $16, %eax
    mov %ax, idt + 6(,%ecx,8)   # offset 31:16
    inc %ecx
    cmp $256, %ecx
    jb 1b
    lidt idtr
    ret

exception_entry:
    PRINT "FAIL: unexpected exception\n"
    EXIT 0x11

    .balign 16
irq_stubs:
.set vector, 32
.rept 224
    .balign 16
    pushl $vector
    jmp irq_common
.set vector, vector + 1
.endr

irq_common:
    pusha
    mov 32(%esp), %eax          # the vector its stub pushed
    and $0xFF, %eax
    incl irq_count(,%eax,4)
    cmp $V_SPURIOUS, %eax       # a spurious interrupt is not in service: no EOI
    je 2f
    cmpb $0, defer_eoi          # some checks look at ISR before sending the EOI themselves
    jne 2f
    cmpb $0, x2apic_on
    jne 1f
    movl $0, LAPIC_EOI
    jmp 2f
1:  mov $0x80B, %ecx            # x2APIC EOI register: write 0
    xor %eax, %eax
    xor %edx, %edx
    wrmsr
2:  popa
    add $4, %esp
    iret

    SERIAL_ROUTINES

    .section .rodata
name_rsdp:   .asciz "etc/acpi/rsdp"
name_tables: .asciz "etc/acpi/tables"
name_loader: .asciz "etc/table-loader"

    .data
    .balign 8
idtr:
    .word 256 * 8 - 1
    .long idt

    .bss
    .balign 8
idt:         .skip 256 * 8
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
rsdp_select: .skip 2
files_found: .skip 1
defer_eoi:   .skip 1
x2apic_on:   .skip 1
    .balign 16
    .skip 8192
stack_top:
