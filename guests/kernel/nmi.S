# nmi.S — the `nmi:N` workload: the CPU interrupts itself N times with a non-maskable interrupt.
# Teaches: an NMI arrives with interrupts off (CLI), at the next instruction boundary, and no
# second NMI can interrupt its handler: the CPU blocks NMIs until the handler's IRETQ.
#
# Each round, with IF = 0, writes the local APIC's ICR: shorthand "self", delivery mode NMI.
# The handler (vector 2, installed by the workload) counts and records how deeply NMI handlers nest.
# The checksum is the count of NMIs handled | the deepest nesting << 32: N | 1 << 32. On KVM
# each round is an MMIO exit for the ICR write and an NMI injection; on the emulated engines a
# few instructions — a row for `compare --workloads nmi`.

.set LAPIC_ICR_LOW,  0x300
.set ICR_SELF_NMI,   1 << 18 | 1 << 14 | 4 << 8   # shorthand self, assert, NMI

    .code64
    .text
# ANCHOR: nmi
# k_nmi: RDI = N; RAX = NMIs handled | deepest nesting << 32.
k_nmi:
    push %rbx
    push %r12
    mov %rdi, %r12
    mov $2, %edi                    # vector 2 (an exception stub until now) → the handler
    mov $nmi_interrupt, %eax
    mov $GATE_KERNEL, %dl
    call set_gate
    call apic_enable                # software-enabled, LINT1 = NMI (clobbers RAX-RDI, R8)
    pushfq
    cli                             # an NMI does not care
    mov nmi_count(%rip), %rbx
    movq $0, nmi_max_depth(%rip)
    xor %ecx, %ecx
1:  cmp %r12, %rcx
    jae 2f
    mov $LAPIC_BASE, %eax
    movl $ICR_SELF_NMI, LAPIC_ICR_LOW(%rax)   # the NMI is taken right after this store
    inc %rcx
    jmp 1b
2:  popfq
    mov nmi_count(%rip), %rax
    sub %rbx, %rax
    mov nmi_max_depth(%rip), %rdx
    shl $32, %rdx
    or %rdx, %rax
    pop %r12
    pop %rbx
    ret

# nmi_interrupt: vector 2. Counts, and notes the nesting depth (1 unless NMIs nest).
nmi_interrupt:
    incq nmi_depth(%rip)
    push %rax
    mov nmi_depth(%rip), %rax
    cmp nmi_max_depth(%rip), %rax
    jbe 1f
    mov %rax, nmi_max_depth(%rip)
1:  pop %rax
    incq nmi_count(%rip)
    decq nmi_depth(%rip)
    iretq
# ANCHOR_END: nmi
