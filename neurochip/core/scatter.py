"""Scatter kernels: the weights of a step's spikes into the synaptic accumulators.

Only spiking neurons cost work.  The forward tables store a conv kernel row's taps
in the order of the target columns they reach, so a spike adds one contiguous run
of weights per kernel row (``_add_run``, vectorised); the runs of every source
neuron are precomputed (:func:`_scatter_plan`; no division per spike); spikes that
share their targets are summed four at a time (:func:`_add_group`; docs/speed.md).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..kernel_cache import drop_stale
from .meta import (KIND_CONV, KIND_FC, M_C, M_CACC_OFF, M_CIN, M_H, M_HC, M_HIN, M_IN_OFF,
                   M_IN_SIZE, M_IS_MAX, M_KF, M_KIND, M_OFF, M_PAD, M_W, M_WB_OFF, M_WC, M_WF_OFF,
                   M_WIN)

drop_stale(__file__)   # cached kernels: recompile when an inlined source changes

# the spikes of one conv-map position are added as a group (_add_group) when the
# map has at least this many channels; with fewer, groups are mostly single
# spikes and the grouping costs more than it saves (measured, docs/speed.md)
GROUP_MIN_CHANNELS = 32

@njit(cache=True)
def _scatter_plan(meta, coords, n_all):
    """Per source neuron, its forward scatter into an avg-pool conv layer.

    ``(src, dst, run, n_runs)``: ``n_runs`` contiguous runs of ``run``
    weights, the first at table offset ``src`` added at target offset
    ``dst``; the next rows follow at fixed strides.
    """
    plan = np.zeros((n_all, 4), np.int64)
    for l in range(1, meta.shape[0]):
        row = meta[l]
        if row[M_KIND] != KIND_CONV or row[M_IS_MAX] != 0:
            continue
        in_off, cout = row[M_IN_OFF], row[M_C]
        pad, kf, hout, wout = row[M_PAD], row[M_KF], row[M_H], row[M_W]
        for j in range(in_off, in_off + row[M_IN_SIZE]):
            yp = coords[j, 0] + pad
            xp = coords[j, 1] + pad
            ci = coords[j, 2]
            a0 = yp - 2 * (hout - 1)
            if a0 < 0:
                a0 = yp & 1
            a1 = min(yp, kf - 1)
            b0 = xp - 2 * (wout - 1)
            if b0 < 0:
                b0 = xp & 1
            b1 = min(xp, kf - 1)
            b1 -= (b1 - xp) & 1
            if a1 < a0 or b1 < b0:
                continue
            nb = (b1 - b0) // 2 + 1
            par = b1 & 1
            src_b = (par * ((kf + 1) // 2) + (kf - 1 - b1) // 2) * cout
            dst_b = ((xp - b1) >> 1) * cout
            plan[j, 0] = (ci * kf + a0) * kf * cout + src_b
            plan[j, 1] = ((yp - a0) >> 1) * wout * cout + dst_b
            plan[j, 2] = nb * cout
            plan[j, 3] = (a1 - a0) // 2 + 1
    return plan


@njit(cache=True, inline="always")
def _add_run(acc, dst, w, src, n):
    """``acc[dst:dst+n] += w[src:src+n]``: one contiguous run (vectorised)."""
    a = acc[dst:dst + n]
    b = w[src:src + n]
    for t in range(n):
        a[t] += b[t]


@njit(cache=True, inline="always")
def _add_runs2(acc, dst, w, s1, s2, n):
    """``acc[dst:dst+n] += w[s1:s1+n] + w[s2:s2+n]``: two runs, one pass over ``acc``."""
    a = acc[dst:dst + n]
    b1, b2 = w[s1:s1 + n], w[s2:s2 + n]
    for t in range(n):
        a[t] += b1[t] + b2[t]


@njit(cache=True, inline="always")
def _add_runs4(acc, dst, w, s1, s2, s3, s4, n):
    """``acc[dst:dst+n] +=`` the sum of four runs of ``w``: one pass over ``acc``."""
    a = acc[dst:dst + n]
    b1, b2, b3, b4 = w[s1:s1 + n], w[s2:s2 + n], w[s3:s3 + n], w[s4:s4 + n]
    for t in range(n):
        a[t] += (b1[t] + b2[t]) + (b3[t] + b4[t])


@njit(cache=True, inline="always")
def _add_group(acc, dst, d_step, w, srcs, g, s_step, nr, n):
    """Add ``g`` sources that share their targets: ``nr`` rows of ``n`` weights.

    Row ``r`` of source ``q`` is ``w[srcs[q] + r*s_step:][:n]``, added at
    ``acc[dst + r*d_step:][:n]``.  The spikes of one neuron position (and all
    spikes into an FC layer) share their targets, so their runs are summed
    four at a time before the accumulator is read and written: a quarter of
    the accumulator traffic, which bounds a one-run scatter.  Exact: every
    partial sum is a sum of table entries that reach the same accumulator in
    the same step, so :func:`_table_dtypes`' bound on the accumulator holds
    for it too (the arithmetic is that of the accumulator dtype or wider).
    """
    q = 0
    while q + 4 <= g:
        s1, s2, s3, s4 = srcs[q], srcs[q + 1], srcs[q + 2], srcs[q + 3]
        for r in range(nr):
            o = r * s_step
            _add_runs4(acc, dst + r * d_step, w, s1 + o, s2 + o, s3 + o, s4 + o, n)
        q += 4
    if q + 2 <= g:
        s1, s2 = srcs[q], srcs[q + 1]
        for r in range(nr):
            _add_runs2(acc, dst + r * d_step, w, s1 + r * s_step, s2 + r * s_step, n)
        q += 2
    if q < g:
        s1 = srcs[q]
        for r in range(nr):
            _add_run(acc, dst + r * d_step, w, s1 + r * s_step, n)


@njit(cache=True, inline="always")
def _scatter_forward(meta, coords, plan, l, w_fwd, w_fc, spk_idx, spk_cnt, u_fwd, cacc, pool_idx,
                     pool_off, srcs):
    """Add the forward weights of layer l-1's spikes into layer l; returns events.

    ``w_fwd``: the conv layers' forward tables, ``w_fc``: the fc layers'.

    Only spiking neurons cost work; the loops visit only the kernel taps that
    land inside the target map (no per-tap bounds tests).  The spikes of one
    source position (consecutive in the index list, channel-last layout)
    reach the same targets and are added as one group (:func:`_add_group`);
    ``srcs`` is int64 scratch of at least the largest layer's size.
    """
    row = meta[l]
    in_off, off = row[M_IN_OFF], row[M_OFF]
    n_spk = spk_cnt[l - 1]
    cout = row[M_C]
    wf = row[M_WF_OFF]
    if row[M_KIND] == KIND_FC:
        for k in range(n_spk):
            srcs[k] = wf + (spk_idx[in_off + k] - in_off) * cout
        _add_group(u_fwd, off, 0, w_fc, srcs, n_spk, 0, 1, cout)
        return n_spk * cout
    pad, kf, hout, wout = row[M_PAD], row[M_KF], row[M_H], row[M_W]
    cin = row[M_CIN]
    taps = 0
    if row[M_IS_MAX] == 0:
        # fused (K+1)^2 kernel, stride 2: one run per kernel row a (rows a step 2)
        s_step = 2 * kf * cout
        d_step = wout * cout
        if cin < GROUP_MIN_CHANNELS:
            for k in range(n_spk):
                j = spk_idx[in_off + k]
                nr = plan[j, 3]
                run = plan[j, 2]
                src = wf + plan[j, 0]
                dst = off + plan[j, 1]
                taps += nr * run
                for r in range(nr):
                    _add_run(u_fwd, dst, w_fwd, src, run)
                    src += s_step
                    dst -= d_step
            return taps
        k = 0
        while k < n_spk:
            j = spk_idx[in_off + k]
            pos_end = j - coords[j, 2] + cin      # first index of the next position
            g = 0
            while k + g < n_spk and spk_idx[in_off + k + g] < pos_end:
                srcs[g] = wf + plan[spk_idx[in_off + k + g], 0]
                g += 1
            nr = plan[j, 3]
            run = plan[j, 2]
            taps += g * nr * run
            _add_group(u_fwd, off + plan[j, 1], -d_step, w_fwd, srcs, g, s_step, nr, run)
            k += g
        return taps
    # max-pool: full-resolution conv, then max over 2x2 with the first argmax
    n_pool = hout * wout * cout
    if n_spk == 0:
        # every conv output is 0: u_fwd stays 0, the first maximum is (0, 0)
        pool_idx[pool_off:pool_off + n_pool] = 0
        return 0
    hc, wc = row[M_HC], row[M_WC]
    co_off = row[M_CACC_OFF]
    cacc[co_off:co_off + hc * wc * cout] = 0
    if cin < GROUP_MIN_CHANNELS:
        for k in range(n_spk):
            j = spk_idx[in_off + k]
            yp = coords[j, 0] + pad
            xp = coords[j, 1] + pad
            ci = coords[j, 2]
            a0 = max(0, yp - hc + 1)
            a1 = min(yp, kf - 1)
            b0 = max(0, xp - wc + 1)
            b1 = min(xp, kf - 1)
            if a1 < a0 or b1 < b0:
                continue
            nb = b1 - b0 + 1
            taps += (a1 - a0 + 1) * nb
            # taps stored with descending b: b1 .. b0 reach the columns xp-b1 .. xp-b0
            src_b = (kf - 1 - b1) * cout
            dst_b = (xp - b1) * cout
            run = nb * cout
            for a in range(a0, a1 + 1):
                src = wf + (ci * kf + a) * kf * cout + src_b
                dst = co_off + (yp - a) * wc * cout + dst_b
                _add_run(cacc, dst, w_fwd, src, run)
    k = n_spk if cin < GROUP_MIN_CHANNELS else 0
    while k < n_spk:
        j = spk_idx[in_off + k]
        pos_end = j - coords[j, 2] + cin      # first index of the next position
        yp = coords[j, 0] + pad
        xp = coords[j, 1] + pad
        a0 = max(0, yp - hc + 1)
        a1 = min(yp, kf - 1)
        b0 = max(0, xp - wc + 1)
        b1 = min(xp, kf - 1)
        # taps stored with descending b: b1 .. b0 reach the columns xp-b1 .. xp-b0
        src_b = (kf - 1 - b1) * cout
        g = 0
        while k + g < n_spk and spk_idx[in_off + k + g] < pos_end:
            ci = coords[spk_idx[in_off + k + g], 2]
            srcs[g] = wf + (ci * kf + a0) * kf * cout + src_b
            g += 1
        k += g
        if a1 < a0 or b1 < b0:
            continue
        nb = b1 - b0 + 1
        taps += g * (a1 - a0 + 1) * nb
        dst = co_off + (yp - a0) * wc * cout + (xp - b1) * cout
        _add_group(cacc, dst, -wc * cout, w_fwd, srcs, g, kf * cout, a1 - a0 + 1, nb * cout)
    for i in range(hout):
        for jj in range(wout):
            c00 = co_off + ((2 * i) * wc + 2 * jj) * cout
            c01 = c00 + cout
            c10 = c00 + wc * cout
            c11 = c10 + cout
            dst = (i * wout + jj) * cout
            v00, v01 = cacc[c00:c00 + cout], cacc[c01:c01 + cout]
            v10, v11 = cacc[c10:c10 + cout], cacc[c11:c11 + cout]
            u_ = u_fwd[off + dst:off + dst + cout]
            p_ = pool_idx[pool_off + dst:pool_off + dst + cout]
            for o in range(cout):
                best = v00[o]
                arg = 0
                if v01[o] > best:
                    best = v01[o]
                    arg = 1
                if v10[o] > best:
                    best = v10[o]
                    arg = 2
                if v11[o] > best:
                    best = v11[o]
                    arg = 3
                u_[o] = best
                p_[o] = arg
    return taps * cout


@njit(cache=True, inline="always")
def _scatter_feedback(meta, coords, l, w_fb, w_fc, spk_idx, spk_cnt, u_fb, pool_idx, pool_off,
                      srcs):
    """Add layer l's spikes through W_l^T into layer l-1's feedback input.

    ``w_fb``: the conv layers' feedback tables, ``w_fc``: the fc layers'.

    As in :func:`_scatter_forward`, spikes with the same targets (FC; the
    channels of one position for avg-pool conv) are added as one group.
    """
    row = meta[l]
    in_off, off = row[M_IN_OFF], row[M_OFF]
    n_spk = spk_cnt[l]
    wb = row[M_WB_OFF]
    if row[M_KIND] == KIND_FC:
        nin = row[M_IN_SIZE]
        for k in range(n_spk):
            srcs[k] = wb + (spk_idx[off + k] - off) * nin
        _add_group(u_fb, in_off, 0, w_fc, srcs, n_spk, 0, 1, nin)
        return n_spk * nin
    cin, hin, win = row[M_CIN], row[M_HIN], row[M_WIN]
    pad, kf, wout, cout = row[M_PAD], row[M_KF], row[M_W], row[M_C]
    taps = 0
    is_max = row[M_IS_MAX]
    if is_max == 0 and cout >= GROUP_MIN_CHANNELS:
        k = 0
        while k < n_spk:
            g0 = spk_idx[off + k]
            pos_end = g0 - coords[g0, 2] + cout
            y0 = 2 * coords[g0, 0] - pad
            x0 = 2 * coords[g0, 1] - pad
            a0 = max(0, -y0)
            a1 = min(kf, hin - y0)
            b0 = max(0, -x0)
            b1 = min(kf, win - x0)
            g = 0
            while k + g < n_spk and spk_idx[off + k + g] < pos_end:
                o = coords[spk_idx[off + k + g], 2]
                srcs[g] = wb + ((o * kf + a0) * kf + b0) * cin
                g += 1
            k += g
            if a1 <= a0 or b1 <= b0:
                continue
            taps += g * (a1 - a0) * (b1 - b0)
            dst = in_off + ((y0 + a0) * win + x0 + b0) * cin
            _add_group(u_fb, dst, win * cin, w_fb, srcs, g, kf * cin, a1 - a0, (b1 - b0) * cin)
        return taps * cin
    for k in range(n_spk):
        g = spk_idx[off + k]
        n = g - off
        y0 = 2 * coords[g, 0] - pad
        x0 = 2 * coords[g, 1] - pad
        o = coords[g, 2]
        if is_max != 0:
            mn = pool_idx[pool_off + n]
            y0 += mn >> 1
            x0 += mn & 1
        a0 = max(0, -y0)
        a1 = min(kf, hin - y0)
        b0 = max(0, -x0)
        b1 = min(kf, win - x0)
        if a1 <= a0 or b1 <= b0:
            continue
        taps += (a1 - a0) * (b1 - b0)
        run = (b1 - b0) * cin
        for a in range(a0, a1):
            src = wb + ((o * kf + a) * kf + b0) * cin
            dst = in_off + ((y0 + a) * win + x0 + b0) * cin
            _add_run(u_fb, dst, w_fb, src, run)
    return taps * cin
