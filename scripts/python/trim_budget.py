"""A hard per-request budget of strong tokens for a serving loop — the rule of the Rust
`trim_router::BudgetedSession` (and `trim route --sessions` with `budget`):

1. regenerate only while at least `reserve` budget tokens are left (`allow`);
2. send the strong request with `max_tokens = strong_max_tokens` (what is left);
3. a strong step that came back complete is kept and `charge`d; one that hit the cap did not
   fit: `discard` it (its tokens are charged) and keep the weak step.

A request therefore never spends more than `budget` strong tokens.

    budget = Budget(300)
    d = router.decide(ep.observe(prm, tokens))
    if budget.allow(d.regenerate):
        step = strong_model(prefix, max_tokens=budget.strong_max_tokens)
        ...
"""


class Budget:
    def __init__(self, budget: int, reserve: int = 1):
        if budget < 0 or reserve < 0:
            raise ValueError("budget and reserve must be ≥ 0")
        self.left = int(budget)
        self.reserve = max(1, int(reserve))

    def allow(self, regenerate: bool) -> bool:
        """The policy's regenerate, masked once less than `reserve` tokens are left."""
        return bool(regenerate) and self.left >= self.reserve

    @property
    def strong_max_tokens(self) -> int:
        return self.left

    def charge(self, tokens: int) -> None:
        """A kept strong step."""
        if tokens > self.left:
            raise ValueError(f"a strong step of {tokens} tokens exceeds the {self.left} left")
        self.left -= int(tokens)

    def discard(self, tokens: int) -> None:
        """A strong step that hit the cap: charged, not kept."""
        self.left = max(0, self.left - int(tokens))
