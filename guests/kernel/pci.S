# pci.S — PCI configuration space through mechanism #1 (ports 0xCF8/0xCFC): enumeration,
# capabilities, BARs.
# Teaches: how an OS finds devices on a bus it can enumerate. Every function has 256 bytes
# of configuration space, reached by writing its address — bus, device, function, register
# — to 0xCF8 and then reading or writing 0xCFC. The first dwords hold vendor and device IDs;
# a device that is not there answers all ones. The BARs say where the device's registers
# appear in memory (firmware, or the VMM, placed them); the capability list chains optional
# structures, and virtio keeps its register map there (virtio_pci.S).
#
# A "config address" below is bus << 16 | device << 11 | function << 8 | register, which is
# what 0xCF8 takes once bit 31 (enable) is added. Only bus 0 is scanned: no bridges here.

.set PCI_ADDRESS,   0xCF8
.set PCI_DATA,      0xCFC
.set PCI_ENABLE,    0x80000000
.set PCI_ID,        0x00            # vendor (15:0), device (31:16)
.set PCI_COMMAND,   0x04            # 16 bits; the status register follows at 0x06
.set PCI_STATUS,    0x06
.set PCI_HEADER_TYPE, 0x0E          # bit 7: a multi-function device
.set PCI_BAR0,      0x10
.set PCI_CAP_PTR,   0x34
.set PCI_INT_LINE,  0x3C            # the interrupt line firmware (or the VMM) wrote: a GSI
.set PCI_CMD_MEMORY,     1 << 1     # decode memory BARs
.set PCI_CMD_BUS_MASTER, 1 << 2     # the device may access memory itself (virtqueues!)
.set PCI_CMD_INTX_DISABLE, 1 << 10
.set PCI_STATUS_CAP_LIST, 1 << 4

    .code64
    .text
# pci_read32: EDI = a config address; EAX = the dword at its (aligned) register. Clobbers EDX.
pci_read32:
    mov %edi, %eax
    and $0xFFFFFC, %eax
    or $PCI_ENABLE, %eax
    mov $PCI_ADDRESS, %dx
    out %eax, %dx
    mov $PCI_DATA, %dx
    in %dx, %eax
    ret

# pci_read8 / pci_read16: EDI = a config address; EAX = the byte / word there (from the
# dword that holds it). Clobbers EDX.
pci_read8:
    push %rcx
    call pci_read32
    mov %edi, %ecx
    and $3, %ecx
    shl $3, %ecx
    shr %cl, %eax
    and $0xFF, %eax
    pop %rcx
    ret
pci_read16:
    push %rcx
    call pci_read32
    mov %edi, %ecx
    and $2, %ecx
    shl $3, %ecx
    shr %cl, %eax
    and $0xFFFF, %eax
    pop %rcx
    ret

# pci_write16: EDI = a config address (even), ESI = the value. Clobbers EAX, EDX.
pci_write16:
    mov %edi, %eax
    and $0xFFFFFC, %eax
    or $PCI_ENABLE, %eax
    mov $PCI_ADDRESS, %dx
    out %eax, %dx
    mov %edi, %edx
    and $2, %edx
    add $PCI_DATA, %edx             # 0xCFC or 0xCFE: the word's place in the dword
    mov %esi, %eax
    out %ax, %dx
    ret

# pci_find: ESI = device ID << 16 | vendor ID. EAX = the config address (register 0) of the
# first function on bus 0 with those IDs, or -1. Clobbers RCX, RDX, RDI, R8.
pci_find:
    xor %r8d, %r8d                  # R8 = device << 11: the slot being looked at
1:  mov %r8d, %edi
    call pci_read32
    cmp $0xFFFF, %ax                # nobody at function 0: an empty slot
    je 4f
    mov $1, %ecx                    # ECX = functions to look at
    lea PCI_HEADER_TYPE(%r8), %edi
    call pci_read8
    test $0x80, %al
    jz 2f
    mov $8, %ecx
2:  xor %edi, %edi                  # EDI = function << 8
3:  push %rdi
    or %r8d, %edi
    call pci_read32
    pop %rdi
    cmp %esi, %eax
    je 5f
    add $0x100, %edi
    dec %ecx
    jnz 3b
4:  add $0x800, %r8d
    cmp $32 << 11, %r8d
    jb 1b
    mov $-1, %eax
    ret
5:  lea (%rdi, %r8), %eax
    ret

# pci_bar_address: EDI = a config address (register 0), ESI = a BAR number. RAX = the
# physical address a memory BAR was placed at (a 64-bit BAR takes the next BAR's dword as
# its upper half), or 0 for an I/O BAR or one never placed. Clobbers RCX, RDX, RSI, RDI.
pci_bar_address:
    lea PCI_BAR0(%rdi, %rsi, 4), %edi
    call pci_read32
    test $1, %al                    # bit 0: an I/O-space BAR
    jnz 8f
    mov %eax, %ecx
    and $~0xF, %eax                 # the address bits (RAX's upper half is 0)
    and $6, %ecx                    # type: 0 = 32-bit, 4 = 64-bit
    cmp $4, %ecx
    jne 9f
    mov %rax, %rsi
    add $4, %edi
    call pci_read32
    shl $32, %rax
    or %rsi, %rax
9:  ret
8:  xor %eax, %eax
    ret

# pci_enable_device: EDI = a config address. Memory decoding and bus mastering on, INTx
# allowed: what firmware may or may not have done, and what a DMA device needs. Clobbers
# RAX, RDX, RSI.
pci_enable_device:
    push %rdi
    add $PCI_COMMAND, %edi
    call pci_read16
    or $PCI_CMD_MEMORY | PCI_CMD_BUS_MASTER, %eax
    and $~PCI_CMD_INTX_DISABLE, %eax
    mov %eax, %esi
    call pci_write16
    pop %rdi
    ret
