# rng.S — a virtio-rng driver, and rng-read, the workload that asks the device for bytes.
# Teaches: the simplest virtio device there is (spec 5.4): one queue, no configuration, no
# features of its own. The driver lends the device a buffer it may write — one descriptor
# with VIRTQ_DESC_F_WRITE — rings the doorbell, and gets the buffer back in the used ring
# filled with random bytes, the used element saying how many. Under an emulator those bytes
# come from a seeded generator (vmscope: SplitMix64 from --virtio-rng-seed, restarted at every
# device reset), so the same run gives the same bytes: repeatable, and no secret at all.
#
# rng-read (workloads=rng-read:N) finds the device on PCI (1af4:1044, modern virtio-pci), then
# in the virtio-mmio windows (device ID 4), brings it up with the shared handshake (virtio.S:
# VERSION_1 only) in its prepare step, outside the timed loop, and then makes N requests of
# RNG_REQUEST device-writable bytes, one at a time, each with a doorbell, polling the used
# index for the answer (VIRTQ_AVAIL_F_NO_INTERRUPT, as the console). Its checksum folds every
# 8-byte word received like console-write's: h = (h XOR word) × 0x100000001B3 from
# 0xCBF29CE484222325. Every rng-read starts from a reset device, so its checksum depends on
# the seed and N only; the host (src/compare/suite.rs) computes it from SplitMix64.
# Without a device it stops the kernel with EXIT_NO_RNG; a device that refuses VERSION_1,
# has no queue, does not answer or gives fewer bytes than asked, with EXIT_RNG_ERROR.

.set VIRTIO_DEVICE_ENTROPY, 4
.set VIRTIO_PCI_IDS_RNG, ((VIRTIO_PCI_MODERN + VIRTIO_DEVICE_ENTROPY) << 16) | VIRTIO_PCI_VENDOR
.set RNG_REQUEST,     64            # bytes per request: eight words
.set RNG_SPINS,       100000000     # polls of the used index before giving up on the device

    .code64
    .text
# k_rng_prepare: find the virtio-rng and bring it up (from reset: a seeded device starts its
# stream over); say where it is the first time. Keeps RBX, RBP, R12-R15 (run_workload's).
k_rng_prepare:
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov $VIRTIO_PCI_IDS_RNG, %edi
    lea rng_dev(%rip), %rsi
    call virtio_pci_probe           # virtio_pci.S: 1af4:1044 on bus 0?
    test %eax, %eax
    jnz 1f
    mov $VIRTIO_DEVICE_ENTROPY, %edi
    lea rng_dev(%rip), %rsi
    call virtio_mmio_probe          # virtio_mmio.S: device ID 4 in a window?
    test %eax, %eax
    jz 8f
1:  lea rng_dev(%rip), %rdi
    movabs $(1 << VF_VERSION_1), %rsi
    call virtio_start               # virtio.S: reset ... FEATURES_OK
    test %rax, %rax
    js 7f
    mov $RNG_DESC, %edi             # empty rings: flags 0, indices 0
    mov $(RNG_BUF - RNG_DESC) / 8, %ecx
    xor %eax, %eax
    rep stosq
    movw $VIRTQ_AVAIL_F_NO_INTERRUPT, RNG_AVAIL   # the driver polls: no interrupts, please
    mov $RNG_QUEUE_WANT, %edi
    lea rng_vq(%rip), %rsi
    VT VT_SETUP_QUEUE, rng_dev(%rip)
    test %eax, %eax
    jz 6f
    lea rng_dev(%rip), %rdi
    call virtio_driver_ok
    movq $0, rng_vq + Q_AVAIL_IDX(%rip)
    movq $RNG_BUF, RNG_DESC         # descriptor 0, for every request: the buffer,
    movl $RNG_REQUEST, RNG_DESC + 8 # its length,
    movl $VIRTQ_DESC_F_WRITE, RNG_DESC + 12   # the device writes it; no next
    cmpq $0, rng_announced(%rip)
    jne 9f
    movq $1, rng_announced(%rip)
    PRINT "rng: virtio-rng, "
    VT VT_DESCRIBE, rng_dev(%rip)
    PRINT "\n"
9:  pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret
8:  PRINT "rng: rng-read needs a virtio-rng and there is none (PCI 1af4:1044, virtio-mmio device ID 4): vmscope run kernel --virtio-rng\n"
    EXIT EXIT_NO_RNG
7:  PRINT "rng: the virtio-rng refused VIRTIO_F_VERSION_1\n"
    EXIT EXIT_RNG_ERROR
6:  PRINT "rng: the virtio-rng has no usable requestq\n"
    EXIT EXIT_RNG_ERROR

# ANCHOR: rng_read
# k_rng_read: RDI = n requests of RNG_REQUEST bytes; RAX = the checksum of every word received.
k_rng_read:
    push %rbx
    push %r12
    push %r13
    push %r14
    mov %rdi, %r12                  # R12 = requests left
    movabs $FNV_OFFSET, %r13        # R13 = the checksum (console.S's constants)
    movabs $FNV_PRIME, %r14
    mov rng_vq + Q_SIZE(%rip), %rbx
    dec %rbx                        # RBX = size - 1: ring index mask
1:  test %r12, %r12
    jz 9f
    mov rng_vq + Q_AVAIL_IDX(%rip), %rax
    mov %rax, %rdx
    and %rbx, %rdx
    movw $0, RNG_AVAIL + 4(, %rdx, 2)   # avail.ring[idx mod size] = head 0
    inc %rax
    mov %rax, rng_vq + Q_AVAIL_IDX(%rip)
    mov %ax, RNG_AVAIL + 2          # publish it (x86 keeps the stores in order)
    mfence
    lea rng_vq(%rip), %rsi
    VT VT_NOTIFY, rng_dev(%rip)     # the doorbell: "fill this buffer"
    mov rng_vq + Q_AVAIL_IDX(%rip), %rdx
    mov $RNG_SPINS, %ecx
2:  movzwl RNG_USED + 2, %eax       # the device's used index has reached ours:
    cmp %dx, %ax                    # the buffer is back, filled
    je 3f
    pause
    dec %ecx
    jnz 2b
    PRINT "rng: the virtio-rng did not answer a request\n"
    EXIT EXIT_RNG_ERROR
3:  dec %eax
    and %rbx, %rax
    cmpl $RNG_REQUEST, RNG_USED + 8(, %rax, 8)  # used.ring[..].len: the bytes written
    jne 8f
    xor %ecx, %ecx                  # fold the buffer, a word at a time:
4:  xor RNG_BUF(%rcx), %r13         # h = (h XOR word) × FNV_PRIME
    imul %r14, %r13
    add $8, %ecx
    cmp $RNG_REQUEST, %ecx
    jb 4b
    dec %r12
    jmp 1b
9:  mov %r13, %rax
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret
8:  PRINT "rng: the virtio-rng wrote fewer bytes than the buffer holds\n"
    EXIT EXIT_RNG_ERROR
# ANCHOR_END: rng_read
