"""Seed lists: '0-255', '0,3,7-9'."""
from pfgmbench.errors import UserError


def format_seeds(seeds):
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8' (the inverse of parse_seeds for sorted lists)."""
    parts, seeds = [], sorted(seeds)
    i = 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(f"{seeds[i]}-{seeds[j]}" if j > i else f"{seeds[i]}")
        i = j + 1
    return ",".join(parts)


def parse_seeds(text):
    seeds = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-")
                a, b = int(a), int(b)
                if b < a:
                    raise ValueError
                seeds.extend(range(a, b + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"bad seed list '{text}'; use e.g. 0-255 or 0,3,7-9") from None
    if not seeds or min(seeds) < 0:
        raise UserError(f"bad seed list '{text}'; seeds are non-negative integers, e.g. 0-255")
    return seeds
