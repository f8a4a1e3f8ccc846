"""World model: configs, shapes and parameter counts vs the reference, distributions, KL balancing, RSSM resets,
prior-only RSSM, bf16 autocast, optimiser decay and a short training run (tiny preset; whole file runs in seconds)."""

import json
import math
import shutil

import pytest
import torch

from genrl.worldmodel import (RSSM, Decoder, Encoder, OneHotDist, WorldModel, clip_and_step, from_dict,
                              kl_balance_loss, kl_categorical, make_optimizer, preset, symlog, to_dict, to_uint8,
                              twohot, twohot_bins, twohot_loss, twohot_mean, unimix_logits)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tiny models are dominated by per-op overhead: one thread avoids contention on a shared CPU."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_batch(B=4, T=16, A=2, seed=0, reward=False):
    g = torch.Generator().manual_seed(seed)
    batch = {
        "observation": torch.randint(0, 256, (B, T, 3, 64, 64), dtype=torch.uint8, generator=g),
        "action": torch.randn(B, T, A, generator=g),
        "is_first": torch.zeros(B, T, dtype=torch.bool),
    }
    batch["is_first"][:, 0] = True
    if reward:
        batch["reward"] = torch.randn(B, T, 1, generator=g)
    return batch


def moving_squares(B=4, T=16, size=12):
    """Fixed sequences of a coloured square on black moved by 4 px per unit of a {-1, 0, 1}^2 action."""
    g = torch.Generator().manual_seed(0)
    obs = torch.zeros(B, T, 3, 64, 64, dtype=torch.uint8)
    act = torch.zeros(B, T, 2)
    colors = torch.tensor([[255, 64, 64], [64, 255, 64], [64, 64, 255], [255, 255, 64]], dtype=torch.uint8)
    for b in range(B):
        pos = torch.randint(0, 64 - size, (2,), generator=g)
        for t in range(T):
            if t > 0:
                a = torch.randint(-1, 2, (2,), generator=g)
                act[b, t] = a.float()
                pos = (pos + 4 * a).clamp(0, 64 - size)
            y, x = int(pos[0]), int(pos[1])
            obs[b, t, :, y:y + size, x:x + size] = colors[b % 4, :, None, None]
    first = torch.zeros(B, T, dtype=torch.bool)
    first[:, 0] = True
    return {"observation": obs, "action": act, "is_first": first}


# ----------------------------------------------------------------------------------------------------- config
def test_presets_and_json_round_trip():
    paper, small, tiny = preset("paper"), preset("small"), preset("tiny")
    assert (paper.cnn_depth, paper.deter, paper.hidden, paper.stoch, paper.discrete) == (48, 1024, 1024, 32, 32)
    assert (paper.batch_size, paper.batch_length, paper.precision) == (48, 48, "auto")
    assert (small.cnn_depth, small.deter, small.hidden, small.batch_size, small.batch_length) == (16, 256, 256, 16, 32)
    assert (tiny.cnn_depth, tiny.deter, tiny.stoch, tiny.discrete, tiny.precision) == (4, 32, 4, 4, "fp32")
    assert preset("small", batch_size=3).batch_size == 3 and preset("small").batch_size == 16
    cfg = preset("tiny", reward_head=True, lr=3e-4)
    assert from_dict(json.loads(json.dumps(to_dict(cfg)))) == cfg
    with pytest.raises(ValueError, match="paper"):
        preset("huge")
    with pytest.raises(ValueError, match="nope"):
        preset("tiny", nope=1)
    with pytest.raises(ValueError, match="bogus"):
        from_dict({**to_dict(cfg), "bogus": 2})
    with pytest.raises(ValueError, match="precision"):
        preset("tiny", precision="fp16")


# ----------------------------------------------------------------------------------------------------- shapes
def test_paper_parameter_counts_match_reference():
    """Reference section 12.4 (built on the meta device: no memory, no init)."""
    cfg = preset("paper", reward_head=True)
    with torch.device("meta"):
        wm = WorldModel(cfg, action_dim=10)
        connector = RSSM(cfg, action_dim=520, embed_dim=None)
    assert n_params(wm.encoder) == 1_552_752
    assert n_params(wm.decoder) == 9_580_083
    assert n_params(wm.rssm) == 12_086_272
    assert n_params(wm.reward) == 5_516_543
    assert n_params(connector) == 9_982_976
    assert wm.embed_dim == 1536 and wm.feat_dim == 2048


def test_paper_encoder_decoder_shapes():
    cfg = preset("paper")
    enc, dec = Encoder(cfg), Decoder(cfg)
    x = torch.rand(1, 3, 64, 64) - 0.5
    sizes = []
    h = x
    for layer in enc.net:
        h = layer(h)
        if isinstance(layer, torch.nn.Conv2d):
            sizes.append(tuple(h.shape[1:]))
    assert sizes == [(48, 31, 31), (96, 14, 14), (192, 6, 6), (384, 2, 2)]
    assert enc.embed_dim == 1536 and enc(x).shape == (1, 1536)
    deconvs = [m for m in dec.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in deconvs] == \
        [(1536, 192, 5), (192, 96, 5), (96, 48, 6), (48, 3, 6)]
    assert tuple(dec.linear_in.weight.shape) == (1536, 1024)
    z = torch.nn.functional.one_hot(torch.randint(0, 32, (1, 32)), 32).float().reshape(1, 1024)
    assert dec(z).shape == (1, 3, 64, 64)


def test_tiny_world_model_shapes():
    cfg = preset("tiny")
    wm = WorldModel(cfg, action_dim=2)
    batch = tiny_batch()
    loss, post, metrics = wm.loss(batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert post["deter"].shape == (4, 16, 32) and post["deter"].dtype == torch.float32
    assert post["stoch"].shape == (4, 16, 4, 4) and post["logit"].shape == (4, 16, 4, 4)
    assert post["logit"].dtype == torch.float32
    assert wm.rssm.get_feat(post).shape == (4, 16, 16 + 32)
    assert set(metrics) == {"kl_loss", "image_loss", "image_mse", "model_kl", "prior_ent", "post_ent", "model_loss"}
    assert all(isinstance(v, float) for v in metrics.values())
    assert wm.encoder(wm.preprocess(batch["observation"])).shape == (4, 16, 128)
    images = wm.decode(post["stoch"])
    assert images.shape == (4, 16, 3, 64, 64) and images.dtype == torch.float32
    frames = to_uint8(images)
    assert frames.shape == (4, 16, 64, 64, 3) and frames.dtype == torch.uint8
    out = wm.open_loop(batch, context=5, horizon=7)
    for key in ("truth", "recon", "pred"):
        assert out[key].shape == (4, 7, 64, 64, 3) and out[key].dtype == torch.uint8, key
    assert torch.equal(out["truth"], batch["observation"][:, 5:12].permute(0, 1, 3, 4, 2))
    post_modes, _ = wm.observe(batch, sample=False)
    assert torch.equal(out["recon"], to_uint8(wm.decode(post_modes["stoch"][:, 5:12])))
    assert wm.open_loop(batch, context=16, horizon=0)["pred"].shape == (4, 0, 64, 64, 3)
    with pytest.raises(ValueError):
        wm.open_loop(batch, context=10, horizon=7)
    assert torch.equal(to_uint8(torch.tensor([-1.0, -0.5, 0.0, 0.5, 2.0]).reshape(1, 1, 5).expand(3, 1, 5))[0, :, 0],
                       torch.tensor([0, 0, 128, 255, 255], dtype=torch.uint8))


# ----------------------------------------------------------------------------------------------------- dists
def test_onehot_samples_unimix_and_stats():
    torch.manual_seed(0)
    logits = torch.tensor([[[30.0, -30.0, -30.0, -30.0], [0.0, 1.0, 2.0, 3.0]]])  # [1, S=2, D=4]
    dist = OneHotDist(logits, unimix=0.01)
    assert (dist.probs >= 0.01 / 4 - 1e-7).all() and dist.probs.dtype == torch.float32
    assert torch.allclose(dist.probs.sum(-1), torch.ones(1, 2))
    assert torch.allclose(unimix_logits(logits, 0.01), dist.logits)
    samples = OneHotDist(logits.expand(20000, 2, 4), unimix=0.01).sample()
    assert torch.allclose(samples, samples.round(), atol=1e-6)
    assert torch.allclose(samples.sum(-1), torch.ones(20000, 2), atol=1e-6)
    assert torch.allclose(samples.mean(0), dist.probs[0], atol=0.02)
    mode = dist.mode()
    assert torch.allclose(mode, torch.tensor([[[1.0, 0, 0, 0], [0, 0, 0, 1.0]]]), atol=1e-6)
    ref = torch.distributions.Categorical(probs=dist.probs)
    assert torch.allclose(dist.entropy(), ref.entropy().sum(-1), atol=1e-5)
    assert torch.allclose(dist.log_prob(mode), ref.log_prob(torch.tensor([[0, 3]])).sum(-1), atol=1e-5)
    assert OneHotDist(dist.logits).probs.allclose(dist.probs, atol=1e-6)  # already-mixed logits are not re-mixed


def test_straight_through_gradients_reach_logits():
    torch.manual_seed(0)
    raw = torch.randn(3, 4, 5, requires_grad=True)
    weights = torch.randn(3, 4, 5)
    for fn in ("sample", "mode"):
        raw.grad = None
        z = getattr(OneHotDist(raw, unimix=0.01), fn)()
        (z * weights).sum().backward()
        assert raw.grad is not None and torch.isfinite(raw.grad).all() and raw.grad.abs().sum() > 0
    rssm = RSSM(preset("tiny"), action_dim=2, embed_dim=None)
    stoch, logit = rssm.prior_from_deter(torch.randn(3, 32))
    stoch.sum().backward()
    assert rssm.prior_head[-1].weight.grad.abs().sum() > 0


def test_kl_by_hand_free_bits_and_balance_gradients():
    q = torch.tensor([[0.9, 0.1], [0.5, 0.5]])  # S=2 variables, D=2
    p = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    kl_hand = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # second variable contributes 0
    assert kl_categorical(q.log(), p.log()).item() == pytest.approx(kl_hand, rel=1e-5)
    assert kl_categorical(p.log(), q.log()).item() == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(5),
                                                                    rel=1e-5)

    def logits(prob_rows, grad=True):
        return torch.tensor(prob_rows).log().requires_grad_(grad)

    # no free nats: both terms have the same value, the loss is the KL
    post, prior = logits([[[0.9, 0.1], [0.5, 0.5]]]), logits([[[0.5, 0.5], [0.5, 0.5]]])
    loss, kl = kl_balance_loss(post, prior, free=0.0, balance=0.85)
    assert loss.item() == pytest.approx(kl_hand, rel=1e-5) and kl.shape == (1,) and not kl.requires_grad
    # free nats clamp element-wise before averaging: entry 0 (0.368 nats) is clamped to 1, entry 1 is not
    post = logits([[[0.9, 0.1], [0.5, 0.5]], [[0.99, 0.01], [0.01, 0.99]]])
    prior = logits([[[0.5, 0.5], [0.5, 0.5]], [[0.01, 0.99], [0.99, 0.01]]])
    loss, kl = kl_balance_loss(post, prior, free=1.0, balance=0.85)
    assert kl[1] > 1.0
    assert loss.item() == pytest.approx((1.0 + kl[1].item()) / 2, rel=1e-5)
    loss.backward()
    assert post.grad[0].abs().max() == 0 and prior.grad[0].abs().max() == 0  # clamped entry: no gradient
    assert post.grad[1].abs().max() > 0 and prior.grad[1].abs().max() > 0
    # balance = 1: only the prior is trained; balance = 0: only the posterior
    grads = {}
    for balance in (1.0, 0.0, 0.85):
        post = logits([[[0.9, 0.1], [0.3, 0.7]]])
        prior = logits([[[0.2, 0.8], [0.6, 0.4]]])
        kl_balance_loss(post, prior, free=0.0, balance=balance)[0].backward()
        grads[balance] = (post.grad.clone(), prior.grad.clone())
    assert grads[1.0][0].abs().max() == 0 and grads[1.0][1].abs().max() > 0
    assert grads[0.0][1].abs().max() == 0 and grads[0.0][0].abs().max() > 0
    assert torch.allclose(grads[0.85][1], 0.85 * grads[1.0][1], atol=1e-6)
    assert torch.allclose(grads[0.85][0], 0.15 * grads[0.0][0], atol=1e-6)


def test_twohot():
    bins = twohot_bins(255)
    y = torch.tensor([-25.0, -3.3, 0.0, 0.07, 7.5, 25.0])
    w = twohot(y, bins)
    assert torch.allclose(w.sum(-1), torch.ones(6))
    assert ((w > 0).sum(-1) <= 2).all()
    assert torch.allclose((w * bins).sum(-1), y.clamp(-20, 20), atol=1e-5)
    x = torch.tensor([-100.0, -1.0, 0.5, 30.0])
    logits = torch.log(twohot(symlog(x), bins) + 1e-12)
    assert torch.allclose(twohot_mean(logits, bins), x, rtol=1e-3, atol=1e-3)
    assert torch.allclose(twohot_loss(torch.zeros(4, 255), x, bins), torch.full((4,), math.log(255)))


# ----------------------------------------------------------------------------------------------------- RSSM
def test_observe_resets_at_is_first_and_action_convention():
    torch.manual_seed(0)
    rssm = RSSM(preset("tiny"), action_dim=3, embed_dim=8)
    embed, action = torch.randn(2, 10, 8), torch.randn(2, 10, 3)
    is_first = torch.zeros(2, 10, dtype=torch.bool)
    is_first[:, 0] = is_first[:, 5] = True
    with torch.no_grad():
        post, prior = rssm.observe(embed, action, is_first, sample=False)
        post2, prior2 = rssm.observe(embed[:, 5:], action[:, 5:], is_first[:, 5:], sample=False)
        for k in ("deter", "stoch", "logit"):
            assert torch.allclose(post[k][:, 5:], post2[k], atol=1e-6), k
            assert torch.allclose(prior[k][:, 5:], prior2[k], atol=1e-6), k
        no_reset, _ = rssm.observe(embed, action, torch.zeros_like(is_first), sample=False)
        assert not torch.allclose(no_reset["deter"][:, 5], post["deter"][:, 5])
        # the action of a first step is zeroed; action[:, t] drives prior t, not t - 1
        changed = action.clone()
        changed[:, 5] += 1.0
        changed[:, 3] += 1.0
        post3, prior3 = rssm.observe(embed, changed, is_first, sample=False)
        assert torch.allclose(post3["deter"][:, 5:], post["deter"][:, 5:])
        assert torch.allclose(prior3["deter"][:, :3], prior["deter"][:, :3])
        assert not torch.allclose(prior3["deter"][:, 3], prior["deter"][:, 3])
        # the posterior sees only the embedding and carries the prior's deter
        assert torch.equal(post["deter"], prior["deter"])
        assert torch.allclose(post["logit"], rssm.posterior(embed, sample=False)[1], atol=1e-6)
        # imagine == a loop of img_step
        start = {k: v[:, -1] for k, v in post.items()}
        imag = rssm.imagine(action[:, :4], start, sample=False)
        state = start
        for t in range(4):
            state = rssm.img_step(state, action[:, t], sample=False)
            assert torch.allclose(imag["deter"][:, t], state["deter"], atol=1e-6)
        assert imag["stoch"].shape == (2, 4, 4, 4)


def test_parallel_observe_equals_the_step_by_step_filter():
    """observe() draws all posteriors at once and scans the GRU; with modes it must equal a loop of obs_step."""
    torch.manual_seed(1)
    rssm = RSSM(preset("tiny"), action_dim=3, embed_dim=8)
    embed, action = torch.randn(3, 9, 8), torch.randn(3, 9, 3)
    is_first = torch.zeros(3, 9, dtype=torch.bool)
    is_first[:, 0] = is_first[1, 4] = is_first[2, 7] = True
    start = {k: torch.randn_like(v) for k, v in rssm.initial(3).items()}
    with torch.no_grad():
        post, prior = rssm.observe(embed, action, is_first, state=start, sample=False)
        state = start
        for t in range(9):
            state, step_prior = rssm.obs_step(state, action[:, t], embed[:, t], is_first[:, t], sample=False)
            for k in ("deter", "stoch", "logit"):
                assert torch.allclose(post[k][:, t], state[k], atol=1e-5), (k, t)
                assert torch.allclose(prior[k][:, t], step_prior[k], atol=1e-5), (k, t)
        gru = rssm.gru
        x, h = torch.randn(3, 5, gru.linear.in_features - gru.hidden_size), torch.randn(3, gru.hidden_size)
        scanned, ref = gru.scan(x, h), h
        for t in range(5):
            ref = gru(x[:, t], ref)
            assert torch.allclose(scanned[:, t], ref, atol=1e-5)


def test_decoder_first_layer_as_matrix_product_equals_the_transposed_conv():
    dec = Decoder(preset("tiny"))
    z = torch.randn(5, dec.linear_in.in_features)
    ref = dec.net(dec.linear_in(z).reshape(-1, dec.in_channels, 1, 1))
    assert torch.allclose(dec(z), ref, atol=1e-5)


def test_prior_only_rssm():
    rssm = RSSM(preset("tiny"), action_dim=16, embed_dim=None)
    assert rssm.post_head is None
    assert not any(name.startswith("post_head") for name, _ in rssm.named_parameters())
    state = rssm.img_step(rssm.initial(5), torch.randn(5, 16))
    assert state["deter"].shape == (5, 32) and state["stoch"].shape == (5, 4, 4)
    assert rssm.imagine(torch.randn(5, 6, 16), state)["logit"].shape == (5, 6, 4, 4)
    with pytest.raises(RuntimeError):
        rssm.obs_step(state, torch.randn(5, 16), torch.randn(5, 8), None)
    with pytest.raises(ValueError):
        rssm.img_step(state, torch.randn(5, 15))


# ----------------------------------------------------------------------------------------------------- model
def test_bf16_autocast_path():
    torch.manual_seed(0)
    wm = WorldModel(preset("tiny", precision="bf16"), action_dim=2)
    loss, post, metrics = wm.loss(tiny_batch())
    assert torch.isfinite(loss) and all(math.isfinite(v) for v in metrics.values())
    assert post["logit"].dtype == torch.float32 and post["deter"].dtype == torch.float32
    loss.backward()
    grads = [p.grad for p in wm.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_reward_head():
    wm = WorldModel(preset("tiny", reward_head=True), action_dim=2)
    assert wm.reward[-1].weight.abs().sum() == 0
    loss, post, metrics = wm.loss(tiny_batch(reward=True))
    assert metrics["reward_loss"] == pytest.approx(math.log(255), rel=1e-5)  # zero-init output: uniform bins
    loss.backward()
    assert wm.reward[-1].weight.grad.abs().sum() > 0
    assert wm.reward_mean(wm.rssm.get_feat(post)).shape == (4, 16)
    with pytest.raises(KeyError, match="reward"):
        wm.loss(tiny_batch())
    assert WorldModel(preset("tiny"), action_dim=2).reward is None


def test_optimizer_decay_skips_norms_and_biases():
    cfg = preset("tiny")
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
    opt = make_optimizer(net, cfg)
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    assert clip_and_step(opt, net.parameters(), cfg.grad_clip) == 0.0
    after = net.state_dict()
    shrink = (before["0.weight"].double() - after["0.weight"].double()) / before["0.weight"].double()
    assert torch.allclose(shrink, torch.full_like(shrink, 1e-6), atol=2e-7)  # factor 1 - 1e-6 up to fp32 rounding
    for k in ("0.bias", "1.weight", "1.bias"):
        assert torch.equal(after[k], before[k]), k
    for p in net.parameters():
        p.grad = torch.full_like(p, float("nan"))
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    assert math.isnan(clip_and_step(opt, net, cfg.grad_clip))  # non-finite: step skipped
    assert all(torch.equal(snapshot[k], v) for k, v in net.state_dict().items())


def test_training_reduces_losses_on_moving_squares():
    torch.manual_seed(0)
    batch = moving_squares()
    x = batch["observation"].float() / 255 - 0.5
    mean_image_loss = ((x - x.mean((0, 1), keepdim=True)) ** 2).sum((-3, -2, -1)).mean().item()
    cfg = preset("tiny", lr=1e-3)
    wm = WorldModel(cfg, action_dim=2)
    opt = make_optimizer(wm, cfg)
    history = []
    for _ in range(150):
        loss, _, metrics = wm.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        assert math.isfinite(clip_and_step(opt, wm.parameters(), cfg.grad_clip))
        history.append(metrics)
    first, last = history[0], history[-1]
    assert last["image_loss"] < 0.2 * first["image_loss"]
    assert last["model_loss"] < 0.2 * first["model_loss"]
    assert last["image_loss"] < 1.5 * mean_image_loss  # close to (or below) the best constant image
    assert last["post_ent"] < first["post_ent"]  # the posterior became informative


def test_precision_resolution():
    from genrl.worldmodel.config import cpu_has_native_bf16, use_bf16

    assert use_bf16("auto", "cuda") and use_bf16("bf16", "cpu") and not use_bf16("fp32", "cuda")
    assert use_bf16("auto", "cpu") == cpu_has_native_bf16()


@pytest.mark.skipif(not any(shutil.which(c) for c in ("c++", "g++", "clang++")),
                    reason="torch.compile on CPU needs a C++ compiler (none on PATH)")
def test_compiled_conv_nets_match_eager_and_keep_state_dict_keys():
    torch.manual_seed(0)
    wm = WorldModel(preset("tiny"), action_dim=2)
    keys = set(wm.state_dict())
    batch = tiny_batch(B=2, T=3)
    obs = wm.preprocess(batch["observation"])
    cfg = wm.cfg
    stoch = torch.zeros(2, 3, cfg.stoch_flat)
    stoch[..., ::cfg.discrete] = 1.0  # one-hot: class 0 of every variable
    eager_embed, eager_recon = wm.encoder(obs), wm.decoder(stoch)
    wm.compile_convnets()
    assert set(wm.state_dict()) == keys  # checkpoints of compiled and eager runs are interchangeable
    torch.testing.assert_close(wm.encoder(obs), eager_embed, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(wm.decoder(stoch), eager_recon, atol=1e-4, rtol=1e-4)
    # a second input shape (acting on one frame) recompiles instead of failing
    assert wm.encoder(obs[:1, :1]).shape == eager_embed[:1, :1].shape
