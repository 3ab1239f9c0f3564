"""Names and indices every execution shares: count kinds, phases, recorded state kinds.

The core, the PyTorch mirror, the Lava models, the trainer and the budget report
index ``BatchResult.counts`` ``(B, phase, layer, kind)`` and ``rec_state``
``(B, phase, kind, neuron)`` with these; nothing else defines them.
"""

# count kinds, per (phase, layer)
(K_SPIKES, K_EVENTS_FWD, K_EVENTS_FB, K_UPDATES, K_ACTIVE, K_SAT_INPUT, K_SAT_DEC, K_SAT_PSI,
 N_COUNTS) = range(9)
COUNT_NAMES = ("spikes", "synaptic_events_fwd", "synaptic_events_fb", "neuron_updates",
               "active_updates", "sat_input", "sat_decoder", "sat_encoder")
PHASES = ("free", "plus", "minus")

# recorded state kinds at the end of each phase
REC_S, REC_DEC, REC_PSI, REC_ENC_PREV = range(4)
STATE_NAMES = ("s", "dec", "psi", "enc_prev")
