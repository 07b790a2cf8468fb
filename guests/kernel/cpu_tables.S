# cpu_tables.S — the GDT's TSS descriptor, the TSS, the IDT and the SYSCALL MSRs.
# Teaches: the three tables a long-mode CPU consults when privilege changes — which code
# segment (GDT), which handler (IDT), which stack (TSS.RSP0) — and how SYSCALL skips the IDT.

    .code64
    .text
# setup_gdt_tss: fill in the TSS descriptor (its base is an address only code can split) and
# load the task register. RSP0 = the trap stack: where the CPU switches to when an interrupt
# or exception arrives in ring 3. Clobbers RAX, RDI.
setup_gdt_tss:
    movl $trap_stack_top, tss + 4(%rip)     # RSP0 (upper half stays 0)
    movw $TSS_SIZE, tss + 102(%rip)         # I/O bitmap offset past the end: no bitmap
    mov $gdt + TSS_SEL, %edi
    mov $tss, %eax
    movw $(TSS_SIZE - 1), (%rdi)            # limit 15:0
    mov %ax, 2(%rdi)                        # base 15:0
    shr $16, %eax
    mov %al, 4(%rdi)                        # base 23:16
    movb $0x89, 5(%rdi)                     # present, DPL 0, available 64-bit TSS
    movb $0, 6(%rdi)
    mov %ah, 7(%rdi)                        # base 31:24
    movl $0, 8(%rdi)                        # base 63:32
    movl $0, 12(%rdi)
    mov $TSS_SEL, %ax
    ltr %ax
    ret

.set GATE_KERNEL, 0x8E          # present, DPL 0, 64-bit interrupt gate (clears IF)
.set GATE_USER,   0xEE          # the same with DPL 3: ring 3 may use INT n on it

# set_gate: EDI = vector, EAX = handler address (below 4 GiB), DL = type byte. Clobbers EAX, EDI.
set_gate:
    shl $4, %edi
    add $idt, %edi
    mov %ax, (%rdi)                         # offset 15:0
    movw $KERNEL_CS, 2(%rdi)
    movb $0, 4(%rdi)                        # IST 0: the normal stack rules
    mov %dl, 5(%rdi)
    shr $16, %eax
    mov %ax, 6(%rdi)                        # offset 31:16
    movl $0, 8(%rdi)                        # offset 63:32
    movl $0, 12(%rdi)
    ret

# setup_idt: exceptions 0-31 to their stubs (traps.S), IRQ 0 to the timer, IRQ 7 and 15 (the
# PICs' spurious vectors) to a plain IRETQ, and vector 0x80 to the system-call gate.
setup_idt:
    push %rbx
    xor %ebx, %ebx
1:  mov %ebx, %eax
    shl $4, %eax                            # stubs are 16 bytes apart
    add $exception_stubs, %eax
    mov %ebx, %edi
    mov $GATE_KERNEL, %dl
    call set_gate
    inc %ebx
    cmp $32, %ebx
    jb 1b
    mov $0x20, %edi
    mov $timer_interrupt, %eax
    mov $GATE_KERNEL, %dl
    call set_gate
    mov $0x27, %edi
    mov $spurious_interrupt, %eax
    mov $GATE_KERNEL, %dl
    call set_gate
    mov $0x2F, %edi
    mov $spurious_interrupt, %eax
    mov $GATE_KERNEL, %dl
    call set_gate
    mov $0x80, %edi
    mov $int80_entry, %eax
    mov $GATE_USER, %dl
    call set_gate
    lidt idtr(%rip)
    pop %rbx
    ret

# setup_syscall_msrs: STAR holds the selectors (SYSCALL: CS = 0x08, SS = 0x10; SYSRET:
# CS = 0x18 + 16 = USER_CS, SS = 0x18 + 8 = USER_DS, both with RPL 3), LSTAR the entry point,
# FMASK the RFLAGS bits SYSCALL clears: TF, IF, DF, so the entry starts with interrupts off.
setup_syscall_msrs:
    mov $MSR_STAR, %ecx
    xor %eax, %eax
    mov $(((USER32_CS | RPL3) << 16) | KERNEL_CS), %edx
    wrmsr
    mov $MSR_LSTAR, %ecx
    mov $syscall_entry, %eax
    xor %edx, %edx
    wrmsr
    mov $MSR_FMASK, %ecx
    mov $0x700, %eax
    xor %edx, %edx
    wrmsr
    ret
