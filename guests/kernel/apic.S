# apic.S — the local APIC and the IOAPIC, switched on when a driver needs them.
# Teaches: how a PCI or virtio-mmio device's interrupt reaches the CPU on a modern PC: the
# device drives a line (a GSI) into the IOAPIC, whose redirection entry turns it into a
# message with a vector for a local APIC; the handler ends it with an EOI to the local APIC,
# which for a level-triggered vector tells the IOAPIC that the line may be looked at again.
#
# The rest of the kernel uses the 8259 PICs (timer.S) and keeps doing so: the local APIC's
# LINT0 stays ExtINT, the PIC's way in. Only the lines the PICs do not have (GSI 16 and up)
# or that PCI shares (level-triggered) go through the IOAPIC. Nothing here runs unless a
# disk workload opens a virtio disk, so the other workloads see the machine unchanged.

.set LAPIC_ID_REG,    0x020
.set LAPIC_TPR,       0x080
.set LAPIC_EOI,       0x0B0
.set LAPIC_SVR,       0x0F0
.set LAPIC_LVT_LINT0, 0x350
.set LAPIC_LVT_LINT1, 0x360
.set LAPIC_SVR_ENABLE, 0x100
.set LVT_EXTINT,      0x700
.set LVT_NMI,         0x400
.set IOAPIC_WINDOW,   0x10          # IOREGSEL at +0, IOWIN at +0x10
.set IOAPIC_VERSION,  0x01          # bits 23:16: the highest redirection entry
.set IOAPIC_REDIR,    0x10          # entry n: 0x10 + 2n (low dword), 0x11 + 2n (high dword)
.set REDIR_LEVEL,     1 << 15       # level-triggered (else edge); active high, fixed, physical

    .code64
    .text
# apic_enable: map both controllers and software-enable the local APIC (SVR bit 8; a
# software-disabled APIC drops every message the IOAPIC sends). Once. Clobbers RAX, RCX,
# RDX, RSI, RDI, R8.
apic_enable:
    cmpq $0, apic_on(%rip)
    jne 9f
    mov $LAPIC_BASE, %edi
    mov $PAGE_SIZE, %esi
    call map_device
    mov $IOAPIC_BASE, %edi
    mov $PAGE_SIZE, %esi
    call map_device
    mov $VECTOR_APIC_SPURIOUS, %edi
    mov $spurious_interrupt, %eax   # timer.S: a spurious vector gets no EOI
    mov $GATE_KERNEL, %dl
    call set_gate
    mov $LAPIC_BASE, %eax
    movl $LAPIC_SVR_ENABLE | VECTOR_APIC_SPURIOUS, LAPIC_SVR(%rax)
    movl $LVT_EXTINT, LAPIC_LVT_LINT0(%rax)   # the PICs keep their way in
    movl $LVT_NMI, LAPIC_LVT_LINT1(%rax)
    movl $0, LAPIC_TPR(%rax)        # accept every priority class
    movq $1, apic_on(%rip)
9:  ret

# ioapic_route: EDI = a GSI, ESI = the entry's low dword (vector | REDIR_LEVEL ...). Sends the
# line to this CPU's local APIC. RAX = 0, or -1 if the IOAPIC has no such input.
# Clobbers RCX, RDX.
ioapic_route:
    mov $IOAPIC_BASE, %eax
    movl $IOAPIC_VERSION, (%rax)
    mov IOAPIC_WINDOW(%rax), %ecx
    shr $16, %ecx
    and $0xFF, %ecx                 # ECX = the highest entry
    cmp %ecx, %edi
    ja 9f
    mov $LAPIC_BASE, %edx
    mov LAPIC_ID_REG(%rdx), %edx    # our APIC ID, bits 31:24 — where the destination goes
    lea IOAPIC_REDIR + 1(, %rdi, 2), %ecx
    movl %ecx, (%rax)
    mov %edx, IOAPIC_WINDOW(%rax)   # high dword: destination
    dec %ecx
    movl %ecx, (%rax)
    mov %esi, IOAPIC_WINDOW(%rax)   # low dword: vector and trigger, unmasked
    xor %eax, %eax
    ret
9:  mov $-1, %rax
    ret

# lapic_eoi: end the interrupt in service. For a level-triggered vector the local APIC passes
# the EOI on to the IOAPIC, which delivers again if the line is still asserted. Clobbers RAX.
lapic_eoi:
    mov $LAPIC_BASE, %eax
    movl $0, LAPIC_EOI(%rax)
    ret
