"""The papers' numbers, in one place, labelled as the papers' (REFERENCE 2 and 3).

Shown beside ours in every table; never written into results as ours.
"""
import math

INF = math.inf

# PFGM++ Table 1, CIFAR-10 (Min FID, Top-3 avg FID, NFE); unconditional and class-conditional.
TABLE1 = {
    "source": "PFGM++ (Xu et al., ICML 2023), Table 1, CIFAR-10 32x32, FID on 50k samples",
    "uncond": {64: (1.96, 1.98, 35), 128: (1.92, 1.94, 35), 2048: (1.91, 1.93, 35),
               3072000: (1.99, 2.02, 35), INF: (1.98, 2.00, 35)},
    "cond": {2048: (1.74, None, 35), INF: (1.79, None, 35)},
    "baselines": [("DDPM", 3.17, 1000), ("DDIM", 4.67, 50), ("VE-ODE", 5.29, 194),
                  ("VP-ODE", 2.86, 134), ("PFGM", 2.48, 104)],
    "paper_N": 3072,
}

# PFGM++ Table 2, FFHQ 64x64 (Min FID, Top-3 avg FID, NFE).
TABLE2 = {
    "source": "PFGM++ (Xu et al., ICML 2023), Table 2, FFHQ 64x64, FID on 50k samples",
    "uncond": {128: (2.43, 2.48, 79), 2048: (2.46, 2.47, 79), 3072000: (2.49, 2.52, 79), INF: (2.53, 2.54, 79)},
    "cond": {},
    "baselines": [],
    "paper_N": 12288,
}

# PFGM++ Table 3, CIFAR-10 FID vs weight bits (9, 8, 7, 6, 5).
TABLE3 = {
    "source": "PFGM++ (Xu et al., ICML 2023), Table 3, CIFAR-10 FID after post-training weight quantisation",
    "bits": [9, 8, 7, 6, 5],
    "rows": {64: [1.96, 1.96, 2.12, 2.94, 28.50], 128: [1.93, 1.97, 2.15, 3.68, 34.26],
             2048: [1.91, 1.97, 2.12, 5.67, 47.02], INF: [1.97, 2.04, 2.16, 5.91, 50.09]},
}

TABLES = {"1": TABLE1, "2": TABLE2, "3": TABLE3}


def D_label(D):
    D = float(D)
    if math.isinf(D):
        return "∞ (EDM)"
    return str(int(D)) if D == int(D) else f"{D:.2f}"
