import torch

from geopre.train.runtime import Runtime, unwrap


def test_cpu_runtime_is_full_precision_single_process():
    rt = Runtime.create("cpu")
    assert rt.device.type == "cpu" and rt.amp_dtype is None and rt.is_main and not rt.distributed
    assert not rt.grad_scaler().is_enabled()
    model = rt.prepare(torch.nn.Linear(2, 2))
    assert unwrap(model) is model
    batch = rt.to_device({"a": torch.ones(1, 3, 4, 4), "b": [torch.zeros(2)]})
    assert batch["a"].device.type == "cpu" and batch["b"][0].shape == (2,)
    with rt.autocast():
        assert model(torch.ones(1, 2)).dtype == torch.float32


def test_asking_for_cuda_without_a_gpu_is_a_user_error(monkeypatch):
    import pytest

    from geopre.errors import UserError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="no CUDA GPU"):
        Runtime.create("cuda")
