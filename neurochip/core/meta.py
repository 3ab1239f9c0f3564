"""Column and slot numbers of the core's small integer tables (names only, no code).

``meta`` (:class:`~neurochip.core.layout.CoreLayout`): one row per layer (row 0 = the input),
columns ``M_*``, layer kinds ``KIND_*``; the constants vector
(:func:`~neurochip.core.tables.constants_vector`): slots ``C_*``.
"""
# meta table columns (one row per layer, row 0 = input)
(M_KIND, M_IN_OFF, M_IN_SIZE, M_OFF, M_SIZE, M_CIN, M_HIN, M_WIN, M_C, M_H, M_W, M_K, M_PAD,
 M_HC, M_WC, M_WF_OFF, M_WB_OFF, M_KF, M_SH_FWD, M_FB_MULT, M_SH_FB, M_SH_OUT, M_IS_MAX,
 M_CACC_OFF, M_NCOLS) = range(25)
KIND_INPUT, KIND_CONV, KIND_FC = 0, 1, 2

# constants vector
(C_ONE, C_BETA, C_EPS, C_LAM, C_THR_LAM, C_ONE_LAM, C_TRACE_MAX, C_STATE_BITS, C_T1, C_T2,
 C_NPHASES, C_NCONST) = range(12)
