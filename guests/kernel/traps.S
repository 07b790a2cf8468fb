# traps.S — exceptions: one entry stub per vector, a saved-register frame, and the handlers.
# Teaches: what the CPU pushes on an exception (RIP, CS, RFLAGS, RSP, SS and sometimes an
# error code), how a kernel saves the rest, and how a handler fixes things and returns with
# IRETQ — the path every #PF, #DE and (on PVM) every system call takes.
#
# The frame trap_common builds, addressed from RBP:
.set F_R15, 0
.set F_R11, 4 * 8
.set F_RCX, 12 * 8
.set F_RSI, 10 * 8
.set F_RDI, 9 * 8
.set F_RAX, 14 * 8
.set F_VECTOR, 15 * 8
.set F_ERROR, 16 * 8
.set F_RIP, 17 * 8
.set F_CS, 18 * 8
.set F_RFLAGS, 19 * 8
.set F_RSP, 20 * 8
.set PF_PRESENT, 1 << 0         # #PF error code: the page was present (a protection fault)
.set PF_USER, 1 << 2            # #PF error code: the access came from ring 3

    .code64
    .text
# One 16-byte stub per vector. The CPU pushes an error code for some vectors only; the
# others push a 0 so that every frame has the same shape.
.macro EXCEPTION_STUB vector
    .balign 16
.if (\vector == 8) || (\vector == 10) || (\vector == 11) || (\vector == 12) || (\vector == 13) || (\vector == 14) || (\vector == 17) || (\vector == 21) || (\vector == 29) || (\vector == 30)
.else
    push $0
.endif
    push $\vector
    jmp trap_common
.endm

    .balign 16
exception_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    EXCEPTION_STUB \v
    .endr

# Save every general register, then dispatch on the vector. A handler returns normally to
# resume the interrupted code with the (possibly changed) saved registers.
trap_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rbp
    cld
    mov F_VECTOR(%rbp), %rax
    cmp $14, %rax
    je 1f
    cmp $0, %rax
    je 2f
    cmp $6, %rax
    je 3f
    jmp report_exception
1:  call page_fault                 # memory.S (demand zero) or syscall.S (PVM)
    jmp trap_return
2:  call divide_error
    jmp trap_return
3:  call pvm_int80                  # syscall.S
trap_return:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp                   # drop the vector and the error code
    iretq

# page_fault: demand-zero first (the common case), then the PVM system-call detour, else fatal.
page_fault:
    mov %cr2, %rdi
    testb $PF_PRESENT, F_ERROR(%rbp)
    jnz 1f
    call demand_zero                # memory.S: RAX = 1 if it mapped a page
    test %rax, %rax
    jnz 2f
1:  call pvm_syscall                # syscall.S: returns only if it finished a SYSCALL
2:  ret

# divide_error: a user program divided by zero. This kernel's policy, so the workload can see
# the handler ran: skip the DIV and hand back RAX XOR 0xDEDE. Only `div %ecx` (F7 F1) in user
# code is fixed up; anything else is a bug and stops the kernel.
divide_error:
    testb $RPL3, F_CS(%rbp)
    jz report_exception
    mov F_RIP(%rbp), %rax
    cmp $USER_BASE, %rax
    jb report_exception
    cmp $DZ_START - 2, %rax
    ja report_exception
    cmpw $0xF1F7, (%rax)
    jne report_exception
    addq $2, F_RIP(%rbp)
    xorq $0xDEDE, F_RAX(%rbp)
    ret

# report_exception: print vector, error code, RIP (and CR2) and stop. Never returns.
report_exception:
    PRINT "kernel: unexpected exception "
    mov F_VECTOR(%rbp), %rax
    call print_u64
    PRINT ", error code 0x"
    mov F_ERROR(%rbp), %rax
    call print_hex64
    PRINT ", rip 0x"
    mov F_RIP(%rbp), %rax
    call print_hex64
    PRINT ", cr2 0x"
    mov %cr2, %rax
    call print_hex64
    PRINT "\n"
    EXIT EXIT_EXCEPTION
