"""A small PPO agent in torch on gymnasium's CartPole-v1, as a poptrain trainable.

One step = one PPO iteration: 8 environments x 128 steps (1,024 transitions),
then 4 epochs of 4 minibatches. The metric ``return`` is the mean undiscounted
return of the greedy policy over 8 evaluation episodes (at most 500).
Explored: learning rate, entropy coefficient, clip range and GAE lambda.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from poptrain.space import Float
from tasks import config_seed

SPACE = {
    "lr": Float(1e-4, 1e-2, log=True),
    "entropy": Float(1e-4, 1e-1, log=True),
    "clip": Float(0.05, 0.4),
    "gae_lambda": Float(0.8, 0.99),
}
ENVS, HORIZON, EPOCHS, MINIBATCHES = 8, 128, 4, 4
GAMMA, VALUE_COEF, MAX_GRAD_NORM = 0.99, 0.5, 0.5
EVAL_EPISODES, MAX_EPISODE = 8, 500


def _vector_env(n: int) -> Any:
    import gymnasium as gym

    return gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")


class CartPolePPO:
    """PPO with separate 64-64 tanh actor and critic; ``apply_config`` changes the hyperparameters in place."""

    def __init__(self, config: dict[str, Any]) -> None:
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        seed = config_seed(config)
        torch.manual_seed(seed)
        nn = torch.nn
        self.actor = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
        self.critic = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
        self.opt = torch.optim.Adam([*self.actor.parameters(), *self.critic.parameters()], lr=config["lr"], eps=1e-5)
        self.iteration = 0
        self.seed = seed
        self.env = None
        self.apply_config(config)

    def apply_config(self, config: dict[str, Any]) -> None:
        self.config = dict(config)
        for group in self.opt.param_groups:
            group["lr"] = config["lr"]

    # -- training ----------------------------------------------------------------------
    def _start(self) -> None:
        # The environments are not part of the state: after a restore they start afresh.
        self.env = _vector_env(ENVS)
        self.obs, _ = self.env.reset(seed=(self.seed + self.iteration) % 2**31)
        self.prev_done = np.zeros(ENVS, dtype=bool)
        self.gen = self.torch.Generator().manual_seed((self.seed * 31 + self.iteration) % 2**63)

    def step(self) -> dict[str, float]:
        torch = self.torch
        if self.env is None:
            self._start()
        obs_buf = np.zeros((HORIZON, ENVS, 4), dtype=np.float32)
        act_buf = np.zeros((HORIZON, ENVS), dtype=np.int64)
        logp_buf = np.zeros((HORIZON, ENVS), dtype=np.float32)
        rew_buf = np.zeros((HORIZON, ENVS), dtype=np.float32)
        term_buf = np.zeros((HORIZON, ENVS), dtype=bool)
        done_buf = np.zeros((HORIZON, ENVS), dtype=bool)
        valid_buf = np.zeros((HORIZON, ENVS), dtype=bool)
        with torch.no_grad():
            for t in range(HORIZON):
                obs_buf[t] = self.obs
                # With next-step autoreset the step after an episode's end only resets: no transition.
                valid_buf[t] = ~self.prev_done
                logits = self.actor(torch.as_tensor(self.obs, dtype=torch.float32))
                dist = torch.distributions.Categorical(logits=logits)
                u = torch.rand(ENVS, generator=self.gen)
                action = (u[:, None] > dist.probs.cumsum(1)).sum(1).clamp(max=1)
                logp_buf[t] = dist.log_prob(action).numpy()
                act_buf[t] = action.numpy()
                self.obs, reward, terminated, truncated, _ = self.env.step(act_buf[t])
                rew_buf[t], term_buf[t] = reward, terminated
                done_buf[t] = terminated | truncated
                self.prev_done = done_buf[t].copy()
            all_obs = torch.as_tensor(np.concatenate([obs_buf, self.obs[None].astype(np.float32)]))
            values = self.critic(all_obs).squeeze(-1).numpy()
        lam = self.config["gae_lambda"]
        adv = np.zeros((HORIZON, ENVS), dtype=np.float32)
        running = np.zeros(ENVS, dtype=np.float32)
        for t in reversed(range(HORIZON)):
            # values[t + 1] is the value of the observation that followed step t (the final one at an episode's end).
            delta = rew_buf[t] + GAMMA * values[t + 1] * (~term_buf[t]) - values[t]
            running = delta + GAMMA * lam * (~done_buf[t]) * running
            adv[t] = running
        returns = adv + values[:-1]
        mask = valid_buf.reshape(-1)
        b_obs = torch.as_tensor(obs_buf.reshape(-1, 4)[mask])
        b_act = torch.as_tensor(act_buf.reshape(-1)[mask])
        b_logp = torch.as_tensor(logp_buf.reshape(-1)[mask])
        b_adv = torch.as_tensor(adv.reshape(-1)[mask])
        b_ret = torch.as_tensor(returns.reshape(-1)[mask])
        n = len(b_obs)
        clip, ent_coef = self.config["clip"], self.config["entropy"]
        params = [*self.actor.parameters(), *self.critic.parameters()]
        for _ in range(EPOCHS):
            for idx in torch.randperm(n, generator=self.gen).chunk(MINIBATCHES):
                dist = torch.distributions.Categorical(logits=self.actor(b_obs[idx]))
                ratio = (dist.log_prob(b_act[idx]) - b_logp[idx]).exp()
                a = b_adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                policy_loss = -torch.min(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a).mean()
                value_loss = 0.5 * (self.critic(b_obs[idx]).squeeze(-1) - b_ret[idx]).pow(2).mean()
                loss = policy_loss + VALUE_COEF * value_loss - ent_coef * dist.entropy().mean()
                self.opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
                self.opt.step()
        self.iteration += 1
        return {"return": self.evaluate(), "policy_loss": policy_loss.item(), "value_loss": value_loss.item()}

    def evaluate(self) -> float:
        """Mean return of the greedy policy over EVAL_EPISODES fixed-seed episodes."""
        torch = self.torch
        env = _vector_env(EVAL_EPISODES)
        obs, _ = env.reset(seed=12345)
        total = np.zeros(EVAL_EPISODES)
        alive = np.ones(EVAL_EPISODES, dtype=bool)
        with torch.no_grad():
            for _ in range(MAX_EPISODE):
                action = self.actor(torch.as_tensor(obs, dtype=torch.float32)).argmax(1).numpy()
                obs, reward, terminated, truncated, _ = env.step(action)
                total += reward * alive
                alive &= ~(terminated | truncated)
                if not alive.any():
                    break
        env.close()
        return float(total.mean())

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(), "opt": self.opt.state_dict(),
                "iteration": self.iteration}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["opt"])
        self.iteration = int(state["iteration"])
        self.env = None
