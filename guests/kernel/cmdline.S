# cmdline.S — reading the Multiboot command line: `workloads=a,b,c iterations=N`.
# Teaches: a kernel's first input from the outside world is a string from the boot loader,
# parsed without a C library — and checked, because a typo should stop the run loudly.
#
# Words are separated by spaces; unknown words are ignored (QEMU puts the kernel's file name
# first). `workloads=all` selects the whole suite — not the disk workloads, which need a disk
# (disk.S, which also reads its own words: disk= request= depth= multiple= lba48=), nor
# console-write (console.S, whose word console=uart|virtio says where the kernel prints), nor
# rng-read (rng.S, which needs a virtio-rng), nor the network workloads (net.S, which need a
# NIC and a peer, and read ip= peer= nic=); iterations defaults to 100. A workload can
# carry its own count, `workloads=compute:20,syscall:5000`, so one boot can give each
# workload as many iterations as suits it.

.set DEFAULT_ITERATIONS, 100
.set MAX_SELECTED, 64

    .code64
    .text
# parse_cmdline: fills selected[], selected_count and iterations. Clobbers RAX-RDI, R8-R11.
parse_cmdline:
    movq $DEFAULT_ITERATIONS, iterations(%rip)
    mov $cmdline_buf, %esi
1:  movzbl (%rsi), %eax             # skip spaces between words
    cmp $' ', %al
    jne 2f
    inc %rsi
    jmp 1b
2:  test %al, %al
    jz 9f
    mov $key_workloads, %edi
    call starts_with
    jnz 3f
    add $key_workloads_len, %rsi
    call parse_workload_list
    jmp 1b
3:  mov $key_iterations, %edi
    call starts_with
    jnz 4f
    add $key_iterations_len, %rsi
    call parse_decimal
    mov %rax, iterations(%rip)
    jmp 1b
4:  call parse_disk_option          # disk.S: disk= request= depth= multiple= lba48=
    test %eax, %eax
    jnz 1b
    call parse_console_option       # console.S: console=uart|virtio
    test %eax, %eax
    jnz 1b
    call parse_net_option           # net.S: ip= peer= nic=
    test %eax, %eax
    jnz 1b
5:  movzbl (%rsi), %eax             # some other word: skip it
    test %al, %al
    jz 9f
    cmp $' ', %al
    je 1b
    inc %rsi
    jmp 5b
9:  ret

# starts_with: RSI = text, RDI = a zero-terminated key. ZF = 1 if the text begins with the key.
# Clobbers RAX, RCX, RDI.
starts_with:
    xor %ecx, %ecx
1:  movzbl (%rdi, %rcx), %eax
    test %al, %al
    jz 2f                           # the whole key matched (ZF = 1 from TEST)
    cmp (%rsi, %rcx), %al
    jne 2f                          # ZF = 0
    inc %rcx
    jmp 1b
2:  ret

# is_delimiter: AL = a character; ZF = 1 for the end of a name (':', ',', ' ' or the end).
is_delimiter:
    cmp $':', %al
    je 1f
    cmp $',', %al
    je 1f
    cmp $' ', %al
    je 1f
    test %al, %al
1:  ret

# parse_workload_list: RSI = "name[:N],name[:N],..."; appends each to selected[] (with N in
# selected_iterations[], or -1 for "use iterations="); RSI ends after the list.
parse_workload_list:
1:  mov selected_count(%rip), %r9d  # R9 = where this item's workloads start in selected[]
    mov $all_name, %edi             # "all": the whole table, in order
    call name_matches
    jnz 3f
    xor %edx, %edx
2:  mov %edx, %eax
    call select_workload
    inc %edx
    cmp $SUITE_COUNT, %edx          # the suite: not the disk workloads, which need a disk
    jb 2b
    jmp 5f
3:  xor %edx, %edx                  # find the name in the table
4:  mov %rdx, %rax
    shl $5, %rax                    # table entries are 32 bytes
    lea workload_table(%rip), %rdi
    mov (%rdi, %rax), %rdi
    call name_matches
    jz 6f
    inc %edx
    cmp $WORKLOAD_COUNT, %edx
    jb 4b
    jmp unknown_workload
6:  mov %edx, %eax
    call select_workload
5:  movzbl (%rsi), %eax             # step over the name and one comma
    call is_delimiter
    je 7f
    inc %rsi
    jmp 5b
7:  cmp $':', %al                  # name:N — this item's own iteration count
    jne 10f
    inc %rsi
    call parse_decimal
    mov %r9d, %ecx
    lea selected_iterations(%rip), %rdx
11: cmp selected_count(%rip), %ecx
    jae 12f
    mov %rax, (%rdx, %rcx, 8)
    inc %ecx
    jmp 11b
12: movzbl (%rsi), %eax
10: cmp $',', %al
    jne 8f
    inc %rsi
    jmp 1b
8:  ret

# name_matches: RSI = a name ending at a delimiter, RDI = a zero-terminated name.
# ZF = 1 if they are the same. Clobbers RAX, RCX.
name_matches:
    xor %ecx, %ecx
1:  movzbl (%rsi, %rcx), %eax
    call is_delimiter
    je 2f
    cmp (%rdi, %rcx), %al
    jne 3f
    inc %rcx
    jmp 1b
2:  cmpb $0, (%rdi, %rcx)           # both ended?
3:  ret

# select_workload: EAX = a table index to append to selected[]. Clobbers RCX.
select_workload:
    mov selected_count(%rip), %ecx
    cmp $MAX_SELECTED, %ecx
    jae 1f
    push %rdx
    lea selected(%rip), %rdx
    mov %al, (%rdx, %rcx)
    lea selected_iterations(%rip), %rdx
    movq $-1, (%rdx, %rcx, 8)       # no count of its own (yet)
    pop %rdx
    incl selected_count(%rip)
1:  ret

unknown_workload:
    PRINT "kernel: unknown workload \""
1:  movzbl (%rsi), %eax             # echo the name
    call is_delimiter
    je 2f
    push %rsi
    call serial_putc
    pop %rsi
    inc %rsi
    jmp 1b
2:  PRINT "\"\n"
    call print_workload_names
    EXIT EXIT_BAD_CMDLINE

# parse_decimal: RSI = digits; RAX = their value, RSI after them. No digits, a non-digit
# before the next space or comma, or a value above 2^40 (days of work on any engine) is an
# error. Clobbers RCX, RDX.
parse_decimal:
    xor %eax, %eax
    xor %ecx, %ecx                  # digits seen
1:  movzbl (%rsi), %edx
    cmp $' ', %dl
    je 2f
    cmp $',', %dl
    je 2f
    test %dl, %dl
    jz 2f
    sub $'0', %dl
    cmp $9, %dl
    ja bad_number
    imul $10, %rax, %rax
    add %rdx, %rax
    bt $40, %rax
    jc bad_number
    inc %rsi
    inc %ecx
    jmp 1b
2:  test %ecx, %ecx
    jz bad_number
    ret

bad_number:
    PRINT "kernel: an iteration count must be a decimal number below 2^40\n"
    EXIT EXIT_BAD_CMDLINE

# parse_ipv4: RSI = "A.B.C.D" (four decimal numbers up to 255, then a space or the end);
# EAX = the address as on the wire (A in the low byte), RSI after it. Clobbers RCX, RDX, R8, R9.
parse_ipv4:
    xor %r8d, %r8d                  # R8D = the address so far
    xor %r9d, %r9d                  # R9D = the byte being read
1:  xor %eax, %eax
    xor %ecx, %ecx                  # digits seen
2:  movzbl (%rsi), %edx
    sub $'0', %dl
    cmp $9, %dl
    ja 3f
    imul $10, %eax, %eax
    add %edx, %eax
    inc %rsi
    inc %ecx
    cmp $3, %ecx
    ja 7f
    jmp 2b
3:  test %ecx, %ecx
    jz 7f
    cmp $255, %eax
    ja 7f
    lea (, %r9, 8), %ecx
    shl %cl, %eax
    or %eax, %r8d
    inc %r9d
    cmp $4, %r9d
    je 4f
    cmpb $'.', (%rsi)
    jne 7f
    inc %rsi
    jmp 1b
4:  movzbl (%rsi), %eax
    test %al, %al
    jz 5f
    cmp $' ', %al
    jne 7f
5:  mov %r8d, %eax
    ret
7:  PRINT "kernel: ip= and peer= take an IPv4 address, A.B.C.D\n"
    EXIT EXIT_BAD_CMDLINE

# print_workload_names: "workloads: compute syscall ..." on one line.
print_workload_names:
    PRINT "workloads:"
    push %rbx
    xor %ebx, %ebx
1:  PRINT " "
    mov %rbx, %rax
    shl $5, %rax
    lea workload_table(%rip), %rsi
    mov (%rsi, %rax), %rsi
    call serial_puts
    inc %ebx
    cmp $SUITE_COUNT, %ebx
    jb 1b
    PRINT "\n"
    pop %rbx
    jmp disk_usage                  # disk.S: a line about disk-read and disk-write, if a disk is attached

    .section .rodata
key_workloads:  .asciz "workloads="
.set key_workloads_len, 10
key_iterations: .asciz "iterations="
.set key_iterations_len, 11
all_name:       .asciz "all"
    .text
