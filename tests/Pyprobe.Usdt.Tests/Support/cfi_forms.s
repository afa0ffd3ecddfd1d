# Call frame forms that gcc's own output on this machine does not use, for CallFrameTableTests to compare against
# readelf: CIE augmentations P (personality), L (LSDA) and S (signal frame) with absptr, udata2/4/8, sdata2/4/8,
# pcrel and indirect encodings (small_personality is an absolute symbol so 2-byte encodings hold it), remember/restore
# state, same_value, undefined, register, val_offset(_sf), the _sf and _extended forms, GNU_args_size,
# GNU_negative_offset_extended, expressions (a stack-realignment CFA, an rbp rule, a val_expression for rip), a CFA
# in r10, and advance_loc1/advance_loc2. Built: gcc -nostdlib -static -no-pie (ld warns that it cannot index the
# 2-byte personality pointers in .eh_frame_hdr; the table itself is as written).
	.set small_personality, 0x1234
	.text
	.globl _start
	.type _start, @function
_start:
	.cfi_startproc
	.cfi_undefined rip
	xor %ebp, %ebp
	hlt
	.cfi_endproc
	.size _start, .-_start

	.globl personality
	.type personality, @function
personality:
	.cfi_startproc
	.cfi_personality 0x0, personality
	.cfi_lsda 0x0, lsda
	ret
	.cfi_endproc

	.type p_udata2, @function
p_udata2:
	.cfi_startproc
	.cfi_personality 0x2, small_personality
	.cfi_lsda 0x3, lsda
	push %rbp
	.cfi_adjust_cfa_offset 8
	.cfi_offset rbp, -16
	mov %rsp, %rbp
	.cfi_def_cfa_register rbp
	nop
	.cfi_remember_state
	pop %rbp
	.cfi_def_cfa rsp, 8
	.cfi_same_value rbp
	ret
	.cfi_restore_state
	nop
	leave
	.cfi_def_cfa rsp, 8
	.cfi_restore rbp
	ret
	.cfi_endproc

	.type p_sdata8, @function
p_sdata8:
	.cfi_startproc
	.cfi_personality 0xc, personality
	.cfi_lsda 0x4, lsda
	push %rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	.cfi_register rip, rax
	nop
	.cfi_val_offset rbp, -24
	nop
	.cfi_undefined rbp
	.cfi_offset rip, -8
	nop
	.cfi_escape 0x2e, 0x10      # DW_CFA_GNU_args_size 16
	nop
	.cfi_escape 0x0f, 0x03, 0x76, 0x78, 0x06   # DW_CFA_def_cfa_expression: DW_OP_breg6 (rbp) -8; DW_OP_deref (stack realignment)
	nop
	.cfi_escape 0x10, 0x06, 0x02, 0x76, 0x00   # DW_CFA_expression rbp: DW_OP_breg6 0
	nop
	.cfi_def_cfa rsp, 16
	.cfi_escape 0x11, 0x06, 0x7d                # DW_CFA_offset_extended_sf rbp, -3 * -8 = c+24? (sleb -3)
	nop
	.cfi_escape 0x12, 0x07, 0x7e                # DW_CFA_def_cfa_sf rsp, -2 * -8 = 16
	nop
	.cfi_escape 0x13, 0x7d                      # DW_CFA_def_cfa_offset_sf -3 * -8 = 24
	nop
	.cfi_escape 0x05, 0x06, 0x03                # DW_CFA_offset_extended rbp, 3 * -8
	nop
	.cfi_escape 0x15, 0x06, 0x7f                # DW_CFA_val_offset_sf rbp, -1 * -8 = v+8
	nop
	.cfi_escape 0x06, 0x06                      # DW_CFA_restore_extended rbp
	nop
	.cfi_escape 0x2f, 0x06, 0x02                # DW_CFA_GNU_negative_offset_extended rbp, -(2 * -8) = c+16
	nop
	.cfi_escape 0x16, 0x10, 0x02, 0x77, 0x00    # DW_CFA_val_expression rip: DW_OP_breg7 0
	nop
	.cfi_escape 0x0c, 0x0a, 0x00                # DW_CFA_def_cfa r10, 0
	nop
	.cfi_escape 0x0d, 0x06                      # DW_CFA_def_cfa_register rbp (offset kept)
	.rept 70
	nop
	.endr
	.cfi_escape 0x0e, 0x10                      # DW_CFA_def_cfa_offset 16 after an advance_loc1
	.rept 300
	nop
	.endr
	.cfi_def_cfa rsp, 8                         # after an advance_loc2
	ret
	.cfi_endproc

	.type p_signal, @function
	nop
p_signal:
	.cfi_startproc
	.cfi_signal_frame
	.cfi_personality 0x9b, personality_ref
	.cfi_lsda 0x1b, lsda
	.cfi_def_cfa rsp, 8
	nop
	.cfi_adjust_cfa_offset 8
	ret
	.cfi_endproc

	.type p_sdata2, @function
p_sdata2:
	.cfi_startproc
	.cfi_personality 0xa, small_personality
	.cfi_lsda 0xb, lsda
	sub $40, %rsp
	.cfi_adjust_cfa_offset 40
	add $40, %rsp
	.cfi_adjust_cfa_offset -40
	ret
	.cfi_endproc

	.type p_udata8, @function
p_udata8:
	.cfi_startproc
	.cfi_personality 0x4, personality
	.cfi_lsda 0x2, small_personality
	ret
	.cfi_endproc

	.data
	.p2align 3
personality_ref:
	.quad personality
lsda:
	.quad 0
