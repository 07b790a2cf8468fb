# work_kernel.S — the ring-0 workloads: port I/O, MMIO, PTE changes, CR3 switches, CPUID,
# CLI/STI, clock reads.
# Teaches: the operations only a kernel performs, and which of them a hypervisor must see —
# an emulator pays for each in software, hardware-assisted virtualization pays a VM exit
# for some (I/O, MMIO, CPUID) and nothing for others (CLI/STI), and shadow paging pays for
# every page-table change and address-space switch.
#
# Each takes RDI = iterations and returns the checksum in RAX; preserves RBX, RBP, R12-R15.

.set PTEMOD_VALUE_A, 0x1111     # what the two frames behind PTE_TEST_PAGE hold (ptemod)
.set PTEMOD_VALUE_B, 0x2222
.set CR3_VALUE_A,    0x3333     # ... and in the two address spaces of cr3switch
.set CR3_VALUE_B,    0x4444

    .code64
    .text
# portio: OUT then IN on a port where no device does anything. On KVM both are VM exits.
# Checksum: the sum of what IN returned (an empty bus reads all ones).
k_portio:
    xor %r8d, %r8d
    xor %ecx, %ecx
    mov $NULL_PORT, %dx
1:  cmp %rdi, %rcx
    jae 2f
    mov %ecx, %eax
    out %eax, %dx
    in %dx, %eax
    add %rax, %r8
    inc %rcx
    jmp 1b
2:  mov %r8, %rax
    ret

# mmio: a 32-bit read from the null device's page (mapped uncached, see boot.S).
# Checksum: the sum of the values read (zeros: nothing answers there).
k_mmio:
    xor %r8d, %r8d
    xor %ecx, %ecx
    mov $NULL_MMIO, %esi
1:  cmp %rdi, %rcx
    jae 2f
    mov (%rsi), %eax
    add %rax, %r8
    inc %rcx
    jmp 1b
2:  mov %r8, %rax
    ret

# cpuid: leaf 0x80000001, whose EDX bit 29 (long mode) every engine must report.
# Checksum: how many times the bit was set.
k_cpuid:
    push %rbx                       # CPUID writes EBX
    xor %r8d, %r8d
    xor %r9d, %r9d
1:  cmp %rdi, %r9
    jae 2f
    mov $0x80000001, %eax
    xor %ecx, %ecx
    cpuid
    shr $29, %edx
    and $1, %edx
    add %rdx, %r8
    inc %r9
    jmp 1b
2:  mov %r8, %rax
    pop %rbx
    ret

# cli_sti: interrupts off and on again. Checksum: the iterations done.
k_cli_sti:
    xor %eax, %eax
1:  cmp %rdi, %rax
    jae 2f
    cli
    sti
    inc %rax
    jmp 1b
2:  ret

# new_test_frame: EAX = a value; RAX = a fresh frame holding it in its first quadword, as a
# present, writable, no-execute PT entry. Clobbers RCX, RDX, RDI.
new_test_frame:
    mov %rax, %rdx
    call frame_alloc
    mov %rdx, (%rax)
    or $PG_P + PG_RW, %rax
    bts $63, %rax
    ret

# ptemod: one address space; PTE_TEST_PAGE's entry is pointed at frame A, then B, then A ...
# with INVLPG after each change, and the page is read. Checksum: the sum of the values read,
# which is right only if every INVLPG really dropped the old translation. The change goes
# through the pv_ops (pv.S): natively a store the shadow MMU traps plus an INVLPG,
# paravirtualized one HC_MMU_UPDATE carrying both — no batching here, one commit per op.
k_ptemod_prepare:
    push %r12
    call space_create
    mov %rax, ptemod_space(%rip)
    mov $PTEMOD_VALUE_A, %eax
    call new_test_frame
    mov %rax, ptemod_entries(%rip)
    mov $PTEMOD_VALUE_B, %eax
    call new_test_frame
    mov %rax, ptemod_entries + 8(%rip)
    mov ptemod_space(%rip), %rdi
    mov $PTE_TEST_PAGE, %esi
    call space_pte
    mov %rax, ptemod_pte(%rip)
    pop %r12
    ret

k_ptemod:
    push %rbx
    push %r12
    push %r13
    push %r14
    mov %rdi, %r12                  # R12 = iterations
    mov %cr3, %r13                  # R13 = the space to return to
    mov ptemod_space(%rip), %rax
    mov %rax, %cr3
    xor %r14d, %r14d                # R14 = the checksum
    xor %ebx, %ebx                  # RBX = the op
1:  cmp %r12, %rbx
    jae 2f
    mov %ebx, %eax
    and $1, %eax
    lea ptemod_entries(%rip), %rsi
    mov (%rsi, %rax, 8), %rsi
    mov ptemod_pte(%rip), %rdi
    call pte_set                    # the PTE change ...
    mov $PTE_TEST_PAGE, %edi
    call tlb_flush_page             # ... the TLB shootdown (of one CPU) ...
    call mmu_commit                 # ... both in effect now
    add (%rdi), %r14
    inc %rbx
    jmp 1b
2:  mov %r13, %cr3
    mov %r14, %rax
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret

# cr3switch: two address spaces that map PTE_TEST_PAGE to different frames; each op loads
# CR3 with the other one and reads the page. Checksum: the sum of the values read.
k_cr3switch_prepare:
    push %rbx
    xor %ebx, %ebx
1:  call space_create
    lea cr3_spaces(%rip), %rcx
    mov %rax, (%rcx, %rbx, 8)
    mov $CR3_VALUE_A, %eax
    test %ebx, %ebx
    jz 2f
    mov $CR3_VALUE_B, %eax
2:  call new_test_frame
    push %rax
    lea cr3_spaces(%rip), %rdi
    mov (%rdi, %rbx, 8), %rdi
    mov $PTE_TEST_PAGE, %esi
    call space_pte
    pop %rdx
    mov %rdx, (%rax)
    inc %ebx
    cmp $2, %ebx
    jb 1b
    pop %rbx
    ret

k_cr3switch:
    mov %cr3, %r9
    lea cr3_spaces(%rip), %r11
    mov $PTE_TEST_PAGE, %esi
    xor %r8d, %r8d
    xor %ecx, %ecx
1:  cmp %rdi, %rcx
    jae 2f
    mov %ecx, %eax
    and $1, %eax
    mov (%r11, %rax, 8), %rax
    mov %rax, %cr3                  # a new address space: the whole (non-global) TLB goes
    add (%rsi), %r8
    inc %rcx
    jmp 1b
2:  mov %r9, %cr3
    mov %r8, %rax
    ret

# clock: read the time once per op, the way this kernel found best: kvmclock if pv.S switched
# it on (memory and RDTSC, no exit), else the PIT (three port accesses, three exits under
# KVM). The ring-3 `rdtsc` workload is the third way: the raw TSC. Checksum: how many reads
# were not below the one before — the op count, whenever time never runs backwards.
k_clock:
    push %rbx
    push %r12
    push %r13
    push %r14
    mov %rdi, %r12                  # R12 = ops left
    mov $pit_clock_read, %ebx       # RBX = the reader, chosen once (clock.S)
    cmpq $0, kvmclock_in_use(%rip)
    je 1f
    mov $kvmclock_read, %ebx
1:  call *%rbx
    mov %rax, %r13                  # R13 = the previous reading
    xor %r14d, %r14d                # R14 = the checksum
2:  test %r12, %r12
    jz 4f
    call *%rbx
    cmp %r13, %rax
    jb 3f
    inc %r14
3:  mov %rax, %r13
    dec %r12
    jmp 2b
4:  mov %r14, %rax
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret
