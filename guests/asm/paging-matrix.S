# paging-matrix.S — checks the MMU from inside: every combination of page rights, CPL,
# access kind and protection bits, accessed/dirty updates, invalidation and large pages.
# Teaches: what each paging rule looks like to a kernel — which access faults, with which
# error code and CR2 — and which changes to page tables a CPU notices when.
#
# Phases (each prints one line per case, "ok ..." or "FAIL ..."):
#   1. 32-bit paging: a 4 KiB and a 4 MiB (PSE) page, WP and not-present faults, D in a
#   4 MiB PDE; 2. PAE paging: a 2 MiB page, an XD fetch fault, a WP fault. Both are skipped
#   when the command line contains "nolegacy" (PVM's KVM refuses paging without long mode).
#   3. 4-level paging: for CR0.WP, CR4.SMEP, CR4.SMAP and RFLAGS.AC (set by STAC/CLAC) in
#   every combination the CPU supports, probes 8 pages (U/S x R/W x XD) with reads, writes
#   and fetches from ring 0 and ring 3 and compares the fault (or none) with the rules.
#   4. Accessed/dirty bits, INVLPG, a not-present entry made present, a CR3 switch to an
#   address space edited while it was not current, a 2 MiB and a 1 GiB page, a reserved bit.
# Exit: 0x10 when every case passed, 0x15 if any failed, 0x11 on an unexpected exception.

    .include "pc.inc"
    .include "serial.inc"
    .include "multiboot.inc"

    MULTIBOOT_HEADER

.set KERNEL_CS,   0x08
.set KERNEL_DS,   0x10
.set USER_DS,     0x18
.set USER_CS,     0x20
.set TSS_SEL,     0x28          # 16 bytes
.set KERNEL32_CS, 0x38
.set TSS_SIZE,    104

.set PG_P,  1 << 0
.set PG_RW, 1 << 1
.set PG_US, 1 << 2
.set PG_A,  1 << 5
.set PG_D,  1 << 6
.set PG_PS, 1 << 7

.set CR0_PG,    1 << 31
.set CR0_WP,    1 << 16
.set CR4_PSE,   1 << 4
.set CR4_PAE,   1 << 5
.set CR4_SMEP,  1 << 20
.set CR4_SMAP,  1 << 21
.set MSR_EFER,  0xC0000080
.set EFER_SCE,  1 << 0
.set EFER_LME,  1 << 8
.set EFER_NXE,  1 << 11
.set MSR_STAR,  0xC0000081
.set MSR_LSTAR, 0xC0000082
.set MSR_FMASK, 0xC0000084

# Linear addresses of the test pages (all in the 2-4 MiB region, mapped by pt_test).
.set USER_CODE,  0x200000       # .user_text, U, read-only, executable
.set USER_STACK, 0x201000       # .user_data, U, writable, XD
.set MATRIX,     0x210000       # 8 pages: index bit 0 = U/S, bit 1 = R/W, bit 2 = XD
.set AD_PAGE,    0x230000
.set INV_PAGE,   0x240000
.set NP_PAGE,    0x250000
.set RSVD_ALIAS, 0x10000000000  # PML4[2], whose entry has the reserved PS bit
.set SWITCH_PAGE, 0x3F0000      # mapped differently in address spaces A and B
.set LARGE_2M,   0x400000       # PD[2]: a 2 MiB page onto physical 0
.set ALIAS_1G,   0x8000000000   # PML4[1] -> a 1 GiB page onto physical 0
.set DATA_OFF,   8              # data probes use offset 8; offset 0 holds RET for fetches

# PTE(index, frame, flags): write pt_test[index] (64-bit code, clobbers RAX).
.macro SET_PTE index, frame, flags
    mov $\frame, %eax
    or $\flags, %eax
    mov %rax, pt_test + 8 * \index(%rip)
.endm

.macro CHECK_EQ got, want, name
    cmp \want, \got
    PASS_IF_EQ "\name"
.endm

# PASS_IF_EQ "name": after a CMP, count and print the case ("ok name" / "FAIL name").
.macro PASS_IF_EQ name
    .pushsection .rodata
.Lname\@: .asciz "\name"
    .popsection
    mov $.Lname\@, %esi
    sete %al
    movzbl %al, %eax
    call report_case
.endm

# ==== 32-bit part ==========================================================================
    .code32
    .text
    .globl _start
_start:
    MULTIBOOT_ENTRY stack_top
    mov %ebx, mbi                   # the Multiboot information structure
    lgdt gdtr
    ljmp $KERNEL32_CS, $1f
1:  mov $KERNEL_DS, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    call serial_init32
    CHECK_MULTIBOOT_MAGIC 32
    PRINT "paging-matrix: the MMU checked from inside\n", 32
    call fill_frames32
    call wants_legacy
    test %eax, %eax
    jz 2f
    call setup_idt32
    call legacy_32bit
    call legacy_pae
    jmp 3f
2:  PRINT "skipped 32-bit and PAE paging (command line says nolegacy)\n", 32
3:  jmp enter_long_mode

    .include "paging-legacy.inc"

enter_long_mode:
    # Address space A: PML4 -> PDPT -> PD; PD[0] = 2 MiB kernel page, PD[1] -> pt_test.
    movl $(pdpt + PG_P + PG_RW + PG_US), pml4
    movl $(pd + PG_P + PG_RW + PG_US), pdpt
    movl $(PG_P | PG_RW | PG_PS), pd
    movl $(pt_test + PG_P + PG_RW + PG_US), pd + 8
    # Address space B shares the kernel page and has its own PT for 2-4 MiB.
    movl $(pdpt_b + PG_P + PG_RW + PG_US), pml4_b
    movl $(pd_b + PG_P + PG_RW + PG_US), pdpt_b
    movl $(PG_P | PG_RW | PG_PS), pd_b
    movl $(pt_b + PG_P + PG_RW + PG_US), pd_b + 8
    mov $pml4, %eax
    mov %eax, %cr3
    mov $CR4_PAE, %eax
    mov %eax, %cr4
    mov $MSR_EFER, %ecx
    rdmsr
    or $(EFER_LME | EFER_NXE | EFER_SCE), %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PG | CR0_WP), %eax
    mov %eax, %cr0
    ljmp $KERNEL_CS, $long_mode

    SERIAL_ROUTINES 32

# ==== 64-bit part ==========================================================================
    .code64
long_mode:
    mov $KERNEL_DS, %ax
    mov %ax, %ss
    mov %ax, %ds
    mov %ax, %es
    mov $stack_top, %esp
    call setup_tables
    call map_test_pages
    call detect_features
    call matrix
    call other_cases
    PRINT "paging-matrix: "
    mov passed(%rip), %eax
    call serial_dec
    PRINT " passed, "
    mov failed(%rip), %eax
    call serial_dec
    PRINT " failed\n"
    cmpl $0, failed(%rip)
    jne 1f
    EXIT 0x10
1:  EXIT 0x15

# report_case: EAX = 1 if the case passed; ESI = its name. Preserves EBX, EBP, R8-R15.
report_case:
    test %eax, %eax
    jz 1f
    incl passed(%rip)
    push %rsi
    PRINT "ok   "
    pop %rsi
    call serial_puts
    PRINT "\n"
    ret
1:  incl failed(%rip)
    push %rsi
    PRINT "FAIL "
    pop %rsi
    call serial_puts
    PRINT "\n"
    ret

# ---- descriptor tables, SYSCALL ------------------------------------------------------------
setup_tables:
    xor %ebx, %ebx
1:  mov %ebx, %eax
    shl $4, %eax
    add $exception_stubs, %eax
    mov %ebx, %edi
    call set_gate
    inc %ebx
    cmp $32, %ebx
    jb 1b
    mov $14, %edi
    mov $pf_handler, %eax
    call set_gate
    lidt idtr(%rip)
    movl $int_stack_top, tss + 4(%rip)  # RSP0: faults in ring 3 must not land on our stack
    movw $TSS_SIZE, tss + 102(%rip)
    mov $gdt + TSS_SEL, %edi
    mov $tss, %eax
    movw $(TSS_SIZE - 1), (%rdi)
    mov %ax, 2(%rdi)
    shr $16, %eax
    mov %al, 4(%rdi)
    movb $0x89, 5(%rdi)
    mov %ah, 7(%rdi)
    mov $TSS_SEL, %ax
    ltr %ax
    # Ring 3 comes back with SYSCALL (CS = 0x08, SS = 0x10); FMASK clears IF, TF, DF, AC.
    mov $MSR_STAR, %ecx
    xor %eax, %eax
    mov $KERNEL_CS, %edx
    wrmsr
    mov $MSR_LSTAR, %ecx
    mov $syscall_entry, %eax
    xor %edx, %edx
    wrmsr
    mov $MSR_FMASK, %ecx
    mov $0x40700, %eax
    wrmsr
    ret

# set_gate: EDI = vector, EAX = handler; a 64-bit interrupt gate, DPL 0.
set_gate:
    shl $4, %edi
    add $idt, %edi
    mov %ax, (%rdi)
    movw $KERNEL_CS, 2(%rdi)
    movw $0x8E00, 4(%rdi)
    shr $16, %eax
    mov %ax, 6(%rdi)
    movq $0, 8(%rdi)
    ret

# map_test_pages: pt_test maps the user pages, the 8 matrix pages (frames 0-7) and the rest.
map_test_pages:
    SET_PTE 0,USER_CODE,PG_P|PG_US
    SET_PTE 1,USER_STACK,PG_P|PG_US|PG_RW
    btsq $63, pt_test + 8(%rip)     # the user stack is not executable
    xor %ecx, %ecx                  # matrix page i -> frame i, rights from the bits of i
1:  mov %ecx, %eax
    shl $12, %eax
    add $frames, %eax
    or $PG_P, %eax
    test $1, %ecx
    jz 2f
    or $PG_US, %eax
2:  test $2, %ecx
    jz 3f
    or $PG_RW, %eax
3:  test $4, %ecx
    jz 4f
    bts $63, %rax
4:  mov $pt_test + 8 * 0x10, %edx  # (32-bit immediates: this ELF32 file has no 64-bit relocations)
    mov %rax, (%rdx, %rcx, 8)
    inc %ecx
    cmp $8, %ecx
    jb 1b
    ret

# detect_features: CPUID leaf 7 (SMEP bit 7, SMAP bit 20) and 1 GiB pages (8000_0001 EDX 26).
detect_features:
    xor %eax, %eax
    cpuid
    cmp $7, %eax
    jb 1f
    mov $7, %eax
    xor %ecx, %ecx
    cpuid
    mov %ebx, %eax
    shr $7, %eax
    and $1, %eax
    mov %eax, has_smep(%rip)
    mov %ebx, %eax
    shr $20, %eax
    and $1, %eax
    mov %eax, has_smap(%rip)
1:  mov $0x80000001, %eax
    cpuid
    shr $26, %edx
    and $1, %edx
    mov %edx, has_1g(%rip)
    ret

# ---- the permission matrix -----------------------------------------------------------------
# R12 = configuration (bit 0 WP, bit 1 SMEP, bit 2 SMAP, bit 3 AC), R13 = CPL (0 or 3),
# R14 = page index (U/S, R/W, XD bits), R15 = access kind (0 read, 1 write, 2 fetch).
matrix:
    xor %r12d, %r12d
next_config:
    test $2, %r12d
    jz 1f
    cmpl $0, has_smep(%rip)
    je skip_config
1:  test $12, %r12d
    jz 2f
    cmpl $0, has_smap(%rip)
    je skip_config
2:  call apply_config
    movl $0, config_failed(%rip)
    xor %r13d, %r13d
next_cpl:
    xor %r14d, %r14d
next_page:
    xor %r15d, %r15d
next_kind:
    call probe
    call expected_code
    cmp %eax, probe_code(%rip)
    je 3f
    call report_mismatch
3:  inc %r15d
    cmp $3, %r15d
    jb next_kind
    inc %r14d
    cmp $8, %r14d
    jb next_page
    add $3, %r13d
    cmp $3, %r13d
    jbe next_cpl
    call report_config
    jmp 4f
skip_config:
    incl skipped(%rip)
4:  inc %r12d
    cmp $16, %r12d
    jb next_config
    cmpl $0, skipped(%rip)
    je 5f
    PRINT "skipped "
    mov skipped(%rip), %eax
    call serial_dec
    PRINT " configurations: CPUID does not advertise SMEP/SMAP\n"
5:  ret

# apply_config: CR0.WP, CR4.SMEP/SMAP and RFLAGS.AC from R12.
apply_config:
    mov %cr0, %rax
    and $~CR0_WP, %eax
    test $1, %r12d
    jz 1f
    or $CR0_WP, %eax
1:  mov %rax, %cr0
    mov %cr4, %rax
    and $~(CR4_SMEP | CR4_SMAP), %eax
    test $2, %r12d
    jz 2f
    or $CR4_SMEP, %eax
2:  test $4, %r12d
    jz 3f
    or $CR4_SMAP, %eax
3:  mov %rax, %cr4
    # Fall through: set AC for ring-0 probes.
set_ac:
    cmpl $0, has_smap(%rip)
    je 2f
    test $8, %r12d
    jz 1f
    stac
    ret
1:  clac
2:  ret

# probe: one access; probe_code = the #PF error code, or -1 if none (CR2 checked too).
probe:
    movl $-1, probe_code(%rip)
    mov %r14d, %edi
    shl $12, %edi
    add $MATRIX, %edi
    mov %rdi, %rbx                  # the expected CR2: page + 0 (fetch) or + DATA_OFF
    cmp $2, %r15d
    je 1f
    add $DATA_OFF, %rbx
1:  mov %rbx, want_cr2(%rip)
    cmp $3, %r13d
    je probe_user
    call set_ac
    mov %rsp, probe_rsp(%rip)
    mov $probe_done, %eax
    mov %rax, recover_rip(%rip)
    cmp $1, %r15d
    jb 2f
    je 3f
    call *%rdi                      # fetch: the page starts with RET
    jmp probe_done
2:  mov DATA_OFF(%rdi), %rax
    jmp probe_done
3:  movq $0x55, DATA_OFF(%rdi)
probe_done:
    mov probe_rsp(%rip), %rsp
    ret

# probe_user: IRETQ to ring 3 at user_probe, which comes back with SYSCALL.
probe_user:
    mov %rsp, kernel_rsp(%rip)
    mov $user_recover, %eax
    mov %rax, recover_rip(%rip)
    mov %r15d, %ebx
    push $(USER_DS | 3)
    mov $user_stack_top, %eax
    push %rax
    push $2                         # RFLAGS: interrupts off
    push $(USER_CS | 3)
    mov $user_probe, %eax
    push %rax
    iretq

syscall_entry:                      # from user_recover: back onto the kernel stack
    mov kernel_rsp(%rip), %rsp
    ret                             # returns from probe (probe_user was its tail)

# pf_handler: record the error code and CR2, resume at recover_rip (same privilege level).
pf_handler:
    push %rax
    # PVM (KVM without VT-x) runs SYSCALL from ring 3 without entering ring 0: the fetch of
    # syscall_entry then faults in ring 3. That is our way back, not a probe's fault.
    push %rdx
    mov %cr2, %rax
    lea syscall_entry(%rip), %rdx
    cmp %rdx, %rax
    pop %rdx
    je syscall_entry
    mov 8(%rsp), %rax               # error code
    mov %eax, probe_code(%rip)
    mov %cr2, %rax
    mov %rax, probe_cr2(%rip)
    mov recover_rip(%rip), %rax
    mov %rax, 16(%rsp)              # the saved RIP
    pop %rax
    add $8, %rsp                    # drop the error code
    iretq

# expected_code: EAX = the error code the rules predict, or -1 (no fault).
expected_code:
    mov %r14d, %ecx                 # ECX bit 0 U/S, bit 1 R/W, bit 2 XD
    cmp $3, %r13d
    jne 1f
    test $1, %ecx                   # ring 3: supervisor page?
    jz fault
    cmp $1, %r15d
    jne 2f
    test $2, %ecx                   # write to a read-only page
    jz fault
2:  cmp $2, %r15d
    jne none
    test $4, %ecx                   # fetch from an XD page
    jnz fault
    jmp none
1:  cmp $2, %r15d                   # ring 0
    jne 3f
    test $1, %ecx
    jz 4f
    test $2, %r12d                  # SMEP: no fetch from user pages
    jnz fault
4:  test $4, %ecx
    jnz fault
    jmp none
3:  test $1, %ecx                   # data access to a user page under SMAP without AC
    jz 5f
    test $4, %r12d
    jz 5f
    test $8, %r12d
    jz fault
5:  cmp $1, %r15d
    jne none
    test $2, %ecx                   # supervisor write to a read-only page with WP
    jnz none
    test $1, %r12d
    jnz fault
none:
    mov $-1, %eax
    ret
fault:
    mov $1, %eax                    # P
    cmp $1, %r15d
    jne 6f
    or $2, %eax                     # W
6:  cmp $3, %r13d
    jne 7f
    or $4, %eax                     # U
7:  cmp $2, %r15d
    jne 8f
    or $0x10, %eax                  # I/D (EFER.NXE = 1)
8:  mov want_cr2(%rip), %rdx
    cmp probe_cr2(%rip), %rdx
    je 9f
    mov $0xBAD, %eax                # a fault with the wrong CR2 never matches
9:  ret

# report_mismatch: print the failing probe (expected code in EAX).
report_mismatch:
    push %rax
    incl config_failed(%rip)
    PRINT "FAIL probe: cpl "
    mov %r13d, %eax
    call serial_dec
    PRINT ", page "
    mov %r14d, %eax
    mov $1, %ecx
    call serial_hex
    PRINT " (bit0 U/S, bit1 R/W, bit2 XD), kind "
    mov %r15d, %eax
    call serial_dec
    PRINT " (0 read, 1 write, 2 fetch): expected #PF code "
    pop %rax
    mov $8, %ecx
    call serial_hex
    PRINT ", got "
    mov probe_code(%rip), %eax
    mov $8, %ecx
    call serial_hex
    PRINT " (ffffffff = no fault)\n"
    ret

# report_config: one line per configuration, counted as one case.
report_config:
    cmpl $0, config_failed(%rip)
    jne 1f
    incl passed(%rip)
    PRINT "ok   "
    jmp 2f
1:  incl failed(%rip)
    PRINT "FAIL "
2:  PRINT "rights matrix, 48 probes (CPL 0/3 x 8 pages x read/write/fetch): WP="
    mov %r12d, %eax
    and $1, %eax
    call serial_dec
    PRINT " SMEP="
    mov %r12d, %eax
    shr $1, %eax
    and $1, %eax
    call serial_dec
    PRINT " SMAP="
    mov %r12d, %eax
    shr $2, %eax
    and $1, %eax
    call serial_dec
    PRINT " AC="
    mov %r12d, %eax
    shr $3, %eax
    and $1, %eax
    call serial_dec
    PRINT "\n"
    ret

# ---- the other cases (WP=1, SMEP=SMAP=0, AC=0 from here on) --------------------------------
other_cases:
    xor %r12d, %r12d
    inc %r12d
    call apply_config
    # Accessed and dirty bits: a read sets A only, a write sets D, a refused write sets nothing.
    SET_PTE 0x30,frames+8*4096,PG_P|PG_RW
    invlpg AD_PAGE
    mov AD_PAGE + DATA_OFF, %eax
    mov pt_test + 8 * 0x30(%rip), %rax
    and $(PG_A | PG_D), %eax
    CHECK_EQ %eax, $PG_A, "accessed bit set by a read; dirty bit not"
    movl $1, AD_PAGE + DATA_OFF
    mov pt_test + 8 * 0x30(%rip), %rax
    and $(PG_A | PG_D), %eax
    CHECK_EQ %eax, $(PG_A|PG_D), "dirty bit set by a write"
    SET_PTE 0x30,frames+8*4096,PG_P
    invlpg AD_PAGE
    mov $AD_PAGE, %edi
    mov $1, %r15d
    call kernel_probe
    mov pt_test + 8 * 0x30(%rip), %rax
    and $PG_D, %eax
    or probe_code(%rip), %eax
    CHECK_EQ %eax, $3, "write to a read-only page with WP=1: #PF 0x3; dirty bit stays clear"

    # INVLPG: a changed mapping is seen after INVLPG.
    SET_PTE 0x40,frames+9*4096,PG_P|PG_RW
    invlpg INV_PAGE
    mov INV_PAGE + DATA_OFF, %ebx
    SET_PTE 0x40,frames+10*4096,PG_P|PG_RW
    invlpg INV_PAGE
    mov INV_PAGE + DATA_OFF, %eax
    shl $16, %ebx
    or %ebx, %eax
    CHECK_EQ %eax, $0x1009100A, "INVLPG: the new mapping is used"

    # A not-present entry made present is used at once (no translation of it was cached).
    movq $0, pt_test + 8 * 0x50(%rip)
    invlpg NP_PAGE
    mov $NP_PAGE, %edi
    xor %r15d, %r15d
    call kernel_probe
    mov probe_code(%rip), %eax
    CHECK_EQ %eax, $0, "read of a not-present page: #PF 0x0"
    SET_PTE 0x50,frames+11*4096,PG_P
    mov NP_PAGE + DATA_OFF, %eax
    CHECK_EQ %eax, $0x100B, "not-present entry made present is used without INVLPG"

    # Two address spaces: B is edited while A is current, then B sees its new mapping.
    mov $(frames + 12 * 4096 + PG_P + PG_RW), %eax
    mov %rax, pt_test + 8 * 0x1F0(%rip)
    mov $(frames + 13 * 4096 + PG_P + PG_RW), %eax
    mov %rax, pt_b + 8 * 0x1F0(%rip)
    mov $pml4_b, %eax
    mov %rax, %cr3
    mov SWITCH_PAGE + DATA_OFF, %ebx  # B: frame 13
    mov $pml4, %eax
    mov %rax, %cr3
    mov SWITCH_PAGE + DATA_OFF, %ecx  # A: frame 12
    mov $(frames + 14 * 4096 + PG_P + PG_RW), %eax
    mov %rax, pt_b + 8 * 0x1F0(%rip)  # edit B's table from A
    mov $pml4_b, %eax
    mov %rax, %cr3
    mov SWITCH_PAGE + DATA_OFF, %ebp  # B again: frame 14 (EBP survives the printing)
    mov $pml4, %eax
    mov %rax, %cr3
    shl $16, %ebx
    or %ebx, %ecx
    CHECK_EQ %ecx, $0x100D100C, "CR3 switch: each address space sees its own mapping"
    CHECK_EQ %ebp, $0x100E, "CR3 switch: edits made while the space was not current are seen"

    # Large pages.
    movq $(PG_P | PG_RW | PG_PS), pd + 16(%rip)
    mov $LARGE_2M + marker64, %edx
    mov (%rdx), %eax
    CHECK_EQ %eax, $0x5AFE64, "2 MiB page translates"
    cmpl $0, has_1g(%rip)
    je 1f
    mov $(pdpt_1g + PG_P + PG_RW), %eax
    mov %rax, pml4 + 8(%rip)
    movq $(PG_P | PG_RW | PG_PS), pdpt_1g(%rip)
    mov $marker64, %edi
    movabs $ALIAS_1G, %rax
    add %rax, %rdi
    mov (%rdi), %eax
    CHECK_EQ %eax, $0x5AFE64, "1 GiB page translates"
    jmp 2f
1:  PRINT "skipped 1 GiB page: CPUID does not advertise it\n"
2:
    # A reserved bit: PS in a PML4E (there are no 512 GiB pages): #PF with P and RSVD.
    mov $(pdpt_1g + PG_P + PG_RW + PG_PS), %eax
    mov %rax, pml4 + 16(%rip)
    movabs $RSVD_ALIAS, %rdi
    xor %r15d, %r15d
    call kernel_probe
    mov probe_code(%rip), %eax
    CHECK_EQ %eax, $9, "reserved bit (PS in a PML4E): #PF 0x9 (P+RSVD)"
    cmpl $9, probe_code(%rip)
    je 3f
    PRINT "     got #PF code 0x"
    mov probe_code(%rip), %eax
    mov $8, %ecx
    call serial_hex
    PRINT "\n"
3:
    ret

# kernel_probe: RDI = page, R15 = kind (0 read, 1 write); probe_code as in probe.
kernel_probe:
    movl $-1, probe_code(%rip)
    mov %rsp, probe_rsp(%rip)
    mov $probe_done, %eax
    mov %rax, recover_rip(%rip)
    test %r15d, %r15d
    jnz 1f
    mov DATA_OFF(%rdi), %rax
    jmp probe_done
1:  movq $0x55, DATA_OFF(%rdi)
    jmp probe_done

# ---- unexpected exceptions -------------------------------------------------------------------
    .balign 16
exception_stubs:
    .set vector, 0
    .rept 32
    .balign 16
    mov $vector, %ebx
    jmp unexpected
    .set vector, vector + 1
    .endr
unexpected:
    PRINT "unexpected exception, vector "
    mov %ebx, %eax
    call serial_dec
    PRINT "\n"
    EXIT 0x11

    SERIAL_ROUTINES

# ==== ring 3: one probe, then SYSCALL back ===================================================
    .section .user_text, "ax"
user_probe:                         # RDI = page, EBX = kind
    cmp $1, %ebx
    jb 1f
    je 2f
    call *%rdi
    jmp user_recover
1:  mov DATA_OFF(%rdi), %rax
    jmp user_recover
2:  movq $0x55, DATA_OFF(%rdi)
user_recover:
    syscall

    .section .user_data, "aw"
    .skip 4096 - 64
user_stack_top:

# ==== data ===================================================================================
    .section .rodata
nolegacy: .asciz "nolegacy"

    .data
    .balign 8
marker32: .long 0x5AFE32
marker64: .long 0x5AFE64
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        # 0x08 kernel code, 64-bit
    .quad 0x00CF92000000FFFF        # 0x10 kernel data
    .quad 0x00CFF2000000FFFF        # 0x18 user data
    .quad 0x00AFFA000000FFFF        # 0x20 user code, 64-bit
    .quad 0, 0                      # 0x28 TSS
    .quad 0x00CF9A000000FFFF        # 0x38 kernel code, 32-bit
gdt_end:
gdtr:
    .word gdt_end - gdt - 1
    .long gdt, 0
idtr:
    .word 32 * 16 - 1
    .long idt, 0
idtr32:
    .word 32 * 8 - 1
    .long idt32
scratch32: .long 0

.set NFRAMES, 16
    .bss
    .balign 4096
pml4:       .skip 4096
pdpt:       .skip 4096
pd:         .skip 4096
pt_test:    .skip 4096
pml4_b:     .skip 4096
pdpt_b:     .skip 4096
pd_b:       .skip 4096
pt_b:       .skip 4096
pdpt_1g:    .skip 4096
pd32:       .skip 4096
pt32:       .skip 4096
pdpt_pae:   .skip 4096
pd_pae:     .skip 4096
pd_pae2:    .skip 4096
pt_pae:     .skip 4096
frames:     .skip NFRAMES * 4096
idt:        .skip 32 * 16
idt32:      .skip 32 * 8
tss:        .skip TSS_SIZE
    .balign 8
mbi:        .skip 8
passed:     .skip 4
failed:     .skip 4
skipped:    .skip 4
config_failed: .skip 4
has_smep:   .skip 4
has_smap:   .skip 4
has_1g:     .skip 4
probe_code: .skip 4
    .balign 8
probe_cr2:  .skip 8
want_cr2:   .skip 8
probe_rsp:  .skip 8
kernel_rsp: .skip 8
recover_rip: .skip 8
    .balign 16
            .skip 8192
stack_top:
            .skip 4096
int_stack_top:
