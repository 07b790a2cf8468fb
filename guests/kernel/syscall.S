# syscall.S — system calls: the SYSCALL fast path, the INT 0x80 gate, and what they call.
# Teaches: two ways into the kernel — SYSCALL (no IDT, no stack switch: the kernel must find
# its own stack) and a DPL-3 interrupt gate (the CPU switches to TSS.RSP0 and pushes a frame)
# — and the rule that a kernel validates everything a user program hands it.
#
# The ABI: RAX = number, RDI and RSI = arguments, the result comes back in RAX, and every
# other register is preserved — except RCX and R11, which SYSCALL itself overwrites.

    .code64
    .text
# SYSCALL from ring 3: RCX = the user's RIP, R11 = the user's RFLAGS, CS/SS = kernel selectors,
# IF cleared by FMASK, RSP still the user's. Nothing else runs while IF is off on this single
# CPU, so one memory word can hold the user's RSP while we move to the trap stack.
syscall_entry:
    mov %rsp, user_rsp(%rip)
    mov $trap_stack_top, %esp
    push %rcx                       # where SYSRET returns to
    push %r11                       # the RFLAGS it restores
    call syscall_dispatch
    pop %r11
    pop %rcx
    mov user_rsp(%rip), %rsp
    sysretq                         # RIP = RCX, RFLAGS = R11, CS/SS = user selectors

# INT 0x80 through the DPL-3 gate: the CPU has switched to RSP0 and pushed SS, RSP, RFLAGS,
# CS, RIP. The handler runs with interrupts off (an interrupt gate) and returns with IRETQ.
int80_entry:
    push %rcx
    push %r11
    call syscall_dispatch
    pop %r11
    pop %rcx
    iretq

# syscall_dispatch: RAX = number, RDI/RSI = arguments; returns RAX. Preserves every register
# but RAX, RCX and R11 (the entry paths above save those two).
syscall_dispatch:
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    cmp $SYS_ECHO, %rax
    je 1f
    cmp $SYS_RELEASE, %rax
    je 2f
    cmp $SYS_EXIT, %rax
    je 3f
    mov $-1, %rax                   # an unknown number: -1, like ENOSYS
    jmp 9f
1:  lea 1(%rdi), %rax
    jmp 9f
2:  call release_pages              # memory.S: RAX = pages released
    jmp 9f
3:  mov %rdi, %rax                  # the task's result ...
    jmp task_exit                   # ... goes back to whoever started it (task.S)
9:  pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    ret

# ---- PVM: system calls that arrive as faults ------------------------------------------------
# On PVM (KVM without VT-x, see the accel-kvm docs) the hypervisor enters a guest kernel from
# user mode only its own paravirtual way, so an ordinary kernel sees:
#  - SYSCALL: RCX, R11, the RFLAGS mask and RIP = LSTAR happen, but the CPU stays in ring 3,
#    and fetching syscall_entry (a supervisor page) is a user #PF with RIP = syscall_entry;
#  - INT 0x80 from ring 3: #UD on the INT instruction instead of our DPL-3 gate.
# Both detours are recognised here and finished as the CPU should have, from the trap frame
# (traps.S), so the result is the same on every engine. Real CPUs, QEMU TCG and vmscope's own
# engines never come this way.
.set RFLAGS_USER_MASK, (3 << 12) | (1 << 16) | (1 << 17)   # IOPL, RF, VM: never from the user

# pvm_syscall: called by page_fault when demand_zero declined. Returns only if it finished a
# SYSCALL; anything else is an unexpected fault.
pvm_syscall:
    testb $RPL3, F_CS(%rbp)
    jz report_exception
    testb $PF_USER, F_ERROR(%rbp)
    jz report_exception
    mov $syscall_entry, %eax
    cmp %rax, F_RIP(%rbp)           # faulted fetching the SYSCALL entry point?
    jne report_exception
    mov F_RCX(%rbp), %rax           # return where SYSRET would: RIP = RCX,
    mov %rax, F_RIP(%rbp)
    mov F_R11(%rbp), %rax           # RFLAGS = R11 (sanitised)
    and $~RFLAGS_USER_MASK, %rax
    or $2, %rax                     # bit 1 always reads 1
    mov %rax, F_RFLAGS(%rbp)
    jmp 1f

# pvm_int80: #UD from ring 3 on the bytes CD 80 (INT 0x80): continue after the instruction
# and run the system call.
pvm_int80:
    testb $RPL3, F_CS(%rbp)
    jz report_exception
    mov F_RIP(%rbp), %rax
    cmp $USER_BASE, %rax            # read the instruction only inside user code
    jb report_exception
    cmp $DZ_START - 2, %rax
    ja report_exception
    cmpw $0x80CD, (%rax)
    jne report_exception
    addq $2, F_RIP(%rbp)
1:  mov F_RAX(%rbp), %rax           # the call, with the user's registers from the frame
    mov F_RDI(%rbp), %rdi
    mov F_RSI(%rbp), %rsi
    call syscall_dispatch
    mov %rax, F_RAX(%rbp)
    ret
