# pv.S — paravirtualization: the kernel finds out it runs on a hypervisor and uses what it offers.
# Teaches: a guest can ask (CPUID) instead of being fooled; once it knows, it can replace
# costly "hardware" operations by requests to the hypervisor — here page-table updates, which
# a shadow-paging VMM must otherwise catch one trapped store at a time, and the clock, which
# it can read from memory instead of through I/O ports (clock.S).
#
# Discovery follows pv_abi.inc (the contract with the VMM): CPUID.1:ECX bit 31, then the
# KVM interface at 0x40000000 (what Linux looks for) and vmscope's own at 0x40000100. A real
# PC, QEMU's TCG ("TCGTCGTCGTCG"), Bochs or vmscope with `--pv off` offer neither, and then
# this file prints nothing and changes nothing: the kernel behaves exactly as before.
#
# The pv_ops layer. Linux routes every page-table change through a table of function pointers
# (paravirt_ops) that is filled in once at boot: the native functions on bare metal, the
# hypervisor's on Xen. This kernel does the same, with three operations:
#     pte_set          RDI = address of a page-table entry, RSI = its new value
#     tlb_flush_page   RDI = a linear address whose translation must be forgotten
#     mmu_commit       make everything asked for so far take effect
# Native: a store, INVLPG, nothing. Paravirtual: each request is queued in mmu_batch, and
# mmu_commit hands the whole queue to the VMM in one HC_MMU_UPDATE hypercall. A caller must
# therefore commit before it relies on a change — which is also what makes batching possible.
# Why pointers and not a flag tested in each operation: the choice is made in one place
# (pv_use_mmu_update), each call site reads the same in both modes, and a student can see in
# pv_ops (data.S) which implementation is in use. All three keep every register but RAX.
#
# The kernel's low memory (0-64 MiB) is mapped one to one in every address space, so the
# addresses of its variables and page tables are also their guest-physical addresses: that
# is what the hypercalls and the kvmclock MSR are given.

    .code64
    .text
# pv_detect: called once at boot, before any address space is made. Records what it finds
# (pv_kvm_features, pv_features, ...), prints one line per interface recognised, switches
# kvmclock on when offered and the pv_ops to hypercalls when HC_MMU_UPDATE is offered.
# Clobbers RAX, RCX, RDX, RSI, RDI, R8.
# ANCHOR: detect
pv_detect:
    push %rbx                       # CPUID writes EBX
    mov $1, %eax
    xor %ecx, %ecx
    cpuid
    bt $31, %ecx                    # "a hypervisor is present": real CPUs leave it 0
    jnc 9f
    call pv_detect_kvm
    call pv_detect_vmscope
9:  pop %rbx
    ret

# pv_detect_kvm: the interface KVM offers (and QEMU with KVM, and vmscope with --pv on).
# Only its clock is used here. Clobbers RAX-RDX, RSI, RDI, R8.
pv_detect_kvm:
    mov $PV_CPUID_KVM, %eax
    xor %ecx, %ecx
    cpuid
    cmp $PV_KVM_SIG_EBX, %ebx       # the 12-byte signature, as the VMM spelled it in
    jne 9f                          # EBX, ECX, EDX
    cmp $PV_KVM_SIG_ECX, %ecx
    jne 9f
    cmp $PV_KVM_SIG_EDX, %edx
    jne 9f
# ANCHOR_END: detect
    mov $PV_CPUID_KVM_FEATURES, %eax
    xor %ecx, %ecx
    cpuid
    mov %rax, pv_kvm_features(%rip) # (CPUID cleared RAX's upper half)
    PRINT "pv: KVM interface, features 0x"
    mov pv_kvm_features(%rip), %rax
    call print_hex32
    testl $PV_KVM_FEATURE_CLOCKSOURCE2, pv_kvm_features(%rip)
    jz 2f
    call kvmclock_enable
    cmpq $0, kvmclock_in_use(%rip)
    je 1f
    PRINT ", kvmclock in use"
    jmp 2f
1:  PRINT ", kvmclock offered but its time info stayed empty: not used"
2:  PRINT "\n"
9:  ret

# kvmclock_enable: give the hypervisor the address of our pvclock_vcpu_time_info (bit 0 set:
# "enable"). From then on it keeps the structure current — version, TSC at its last update,
# the time then, and the TSC's rate — and clock.S reads the time from it without an exit.
# A hypervisor that accepted the MSR has filled the structure before the next instruction
# runs (the version is even and non-zero then); if it has not, the clock is not used.
# Clobbers RAX, RCX, RDX.
kvmclock_enable:
    mov $pvclock + 1, %eax          # the address (below 4 GiB) | enable
    xor %edx, %edx
    mov $MSR_KVM_SYSTEM_TIME_NEW, %ecx
    wrmsr
    cmpl $0, pvclock + PVCLOCK_VERSION(%rip)
    je 1f
    movq $1, kvmclock_in_use(%rip)
    ret
1:  xor %eax, %eax                  # switch it off again: nothing should write there
    xor %edx, %edx
    wrmsr
    ret

# pv_detect_vmscope: vmscope's own interface: the hypercall door and batched page tables.
# Clobbers RAX-RDX, RSI, RDI, R8.
pv_detect_vmscope:
    mov $PV_CPUID_VMSCOPE, %eax
    xor %ecx, %ecx
    cpuid
    cmp $PV_VMSCOPE_SIG_EBX, %ebx
    jne 9f
    cmp $PV_VMSCOPE_SIG_ECX, %ecx
    jne 9f
    cmp $PV_VMSCOPE_SIG_EDX, %edx
    jne 9f
    cmp $PV_CPUID_VMSCOPE_INFO, %eax    # EAX = the highest leaf: is the info leaf there?
    jb 9f
    mov $PV_CPUID_VMSCOPE_INFO, %eax
    xor %ecx, %ecx
    cpuid
    mov %rax, pv_features(%rip)
    movzwl %bx, %ebx                # a port number is 16 bits
    mov %rbx, pv_hypercall_port(%rip)
    mov %rcx, pv_abi_version(%rip)
    cmp $MMU_BATCH_MAX, %edx        # never more than our buffer holds, whatever CPUID says
    jbe 1f
    mov $MMU_BATCH_MAX, %edx
1:  mov %rdx, pv_batch_max(%rip)
    PRINT "pv: vmscope interface v"
    mov pv_abi_version(%rip), %rax
    call print_u64
    PRINT ", features 0x"
    mov pv_features(%rip), %rax
    call print_hex
    PRINT ", hypercall port 0x"
    mov pv_hypercall_port(%rip), %rax
    call print_hex
    PRINT ", batches of up to "
    mov pv_batch_max(%rip), %rax
    call print_u64
    cmpq $1, pv_abi_version(%rip)   # this kernel speaks version 1 only
    je 2f
    PRINT ", an ABI this kernel does not know: not used\n"
    ret
2:  PRINT "\n"
    call pv_use_mmu_update
9:  ret

# ANCHOR: use_mmu_update
# pv_use_mmu_update: switch the pv_ops to hypercalls if the interface offers them — but ask
# the door its ABI version first: a port that nobody answers reads all ones, and trusting it
# with page tables would fail much later and much more confusingly. Clobbers RAX, RCX.
pv_use_mmu_update:
    mov pv_features(%rip), %rax
    and $PV_F_HYPERCALL | PV_F_MMU_UPDATE, %eax
    cmp $PV_F_HYPERCALL | PV_F_MMU_UPDATE, %eax
    jne 9f
    cmpq $0, pv_batch_max(%rip)
    je 9f
    mov $HC_VERSION, %eax
    call hypercall
    cmp pv_abi_version(%rip), %rax
    jne 1f
    movl $pte_set_pv, pv_op_pte_set(%rip)       # from now on every page-table change
    movl $tlb_flush_page_pv, pv_op_tlb_flush_page(%rip)   # goes through mmu_batch
    movl $mmu_commit_pv, pv_op_mmu_commit(%rip)
9:  ret
# ANCHOR_END: use_mmu_update
1:  push %rax
    PRINT "pv: HC_VERSION answered "
    pop %rax
    call print_i64
    PRINT ": page tables stay native\n"
    ret

# ANCHOR: pv_ops
# hypercall: RAX = number, RBX/RCX/RSI/RDI = its arguments; returns the result in RAX
# (sign-extended from EAX, where the VMM puts it). The door is an IN from the port CPUID
# named: on KVM one exit to the VMM, on vmscope's own engines one emulated instruction.
# Nothing but RAX changes.
hypercall:
    push %rdx
    mov pv_hypercall_port(%rip), %edx
    in %dx, %eax
    movslq %eax, %rax
    pop %rdx
    ret

# ---- the pv_ops: what the rest of the kernel calls -----------------------------------------
pte_set:
    jmp *pv_op_pte_set(%rip)
tlb_flush_page:
    jmp *pv_op_tlb_flush_page(%rip)
mmu_commit:
    jmp *pv_op_mmu_commit(%rip)

# Native: the CPU (or a VMM that traps the store) does the work at once.
pte_set_native:
    mov %rsi, (%rdi)
    ret
tlb_flush_page_native:
    invlpg (%rdi)
    ret
mmu_commit_native:
    ret

# Paravirtual: queue a request of {target, value}; MMU_OP_WRITE_PTE is 0, so an entry's
# (8-byte aligned) address is its target as it stands.
pte_set_pv:
    jmp mmu_queue
# ANCHOR_END: pv_ops

tlb_flush_page_pv:
    push %rdi
    push %rsi
    mov %rdi, %rsi                  # value = the linear address
    mov $MMU_OP_INVLPG, %edi
    call mmu_queue
    pop %rsi
    pop %rdi
    ret

# mmu_queue: RDI = target (op in the low 3 bits), RSI = value. A full queue is submitted at
# once, so callers never need to know the batch limit. There is one CPU and no interrupt
# handler changes page tables, so the queue needs no lock. Clobbers RAX.
mmu_queue:
    push %rcx
    mov mmu_batch_count(%rip), %rax
    imul $MMU_REQUEST_SIZE, %rax
    lea mmu_batch(%rip), %rcx
    mov %rdi, (%rcx, %rax)
    mov %rsi, 8(%rcx, %rax)
    pop %rcx
    mov mmu_batch_count(%rip), %rax
    inc %rax
    mov %rax, mmu_batch_count(%rip)
    cmp pv_batch_max(%rip), %rax
    jb 1f
    call mmu_commit_pv
1:  ret

# ANCHOR: mmu_commit
# mmu_commit_pv: HC_MMU_UPDATE with the queued requests. The VMM checks the whole batch and
# applies all of it (answering the count) or none of it (answering an error); anything but
# the count means this kernel built a bad request — a bug, so it stops loudly. Clobbers RAX.
mmu_commit_pv:
    push %rcx
    mov mmu_batch_count(%rip), %rcx
    test %rcx, %rcx
    jz 1f                           # nothing queued: no exit for nothing
    push %rbx
    mov $mmu_batch, %ebx            # its guest-physical address (identity-mapped)
    mov $HC_MMU_UPDATE, %eax
    call hypercall
    pop %rbx
    cmp %rcx, %rax
    jne mmu_update_failed
    movq $0, mmu_batch_count(%rip)
1:  pop %rcx
    ret
# ANCHOR_END: mmu_commit

mmu_update_failed:
    push %rax
    PRINT "pv: HC_MMU_UPDATE of "
    mov mmu_batch_count(%rip), %rax
    call print_u64
    PRINT " requests answered "
    pop %rax
    call print_i64
    PRINT "\n"
    EXIT EXIT_PV_FAILED

# print_i64: RAX = a signed value, in decimal. Clobbers like print_u64.
print_i64:
    test %rax, %rax
    jns print_u64
    push %rax
    PRINT "-"
    pop %rax
    neg %rax
    jmp print_u64
