# task.S — running a user program in ring 3 and getting control back when it exits.
# Teaches: the kernel enters user mode by "returning" there with IRETQ from a frame it built
# itself; it gets back only through a system call, a fault or an interrupt. SYS_EXIT then
# resumes the kernel code that started the task, like a longjmp.

    .code64
    .text
# enter_user: RDI = user entry point, RSI = its argument (arrives in RDI). Runs the task in
# the current address space until it calls SYS_EXIT; returns its result in RAX. Preserves
# RBX, RBP, R12-R15 like any function.
enter_user:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, task_kernel_rsp(%rip) # where task_exit resumes
    push $(USER_DS | RPL3)          # SS
    push $USER_STACK_TOP            # RSP: the stack pages appear on demand
    push $(RFLAGS_IF | 2)           # RFLAGS: interrupts on
    push $(USER_CS | RPL3)          # CS: its RPL becomes the new privilege level
    push %rdi                       # RIP
    mov %rsi, %rdi
    xor %eax, %eax                  # hand the program no kernel values
    xor %ebx, %ebx
    xor %ecx, %ecx
    xor %edx, %edx
    xor %esi, %esi
    xor %ebp, %ebp
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    iretq

# task_exit: reached from SYS_EXIT on the trap stack with RAX = the task's result. Everything
# the task left on the trap stack is abandoned; the next entry from ring 3 starts it afresh.
task_exit:
    mov task_kernel_rsp(%rip), %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret                             # out of enter_user, IF still off (the runner turns it on)
