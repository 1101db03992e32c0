"""PyTorch's MNIST example (github.com/pytorch/examples, mnist/main.py) with only the imports
changed: the Net, train() and test() below are the example's code, line for line.

It runs one epoch on the first 1,000 Fashion-MNIST training images (random but learnable data
when the data set is not installed) and checks that the network learns.
"""

from __future__ import annotations

import numpy as np
import pytest

# The example's imports, pointed at chainrule. (``torch.flatten``, ``torch.no_grad`` and
# ``torch.manual_seed`` exist at chainrule's top level; ``torch.save`` is chainrule.nn's.)
import chainrule as torch
import chainrule.nn as nn
import chainrule.nn.functional as F
import chainrule.optim as optim
from chainrule.nn.serialization import load as torch_load
from chainrule.nn.serialization import save as torch_save
from chainrule.optim.lr_scheduler import StepLR
from chainrule.utils.data import DataLoader, TensorDataset

# -- the example's code -----------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()  # noqa: UP008 - the example's line
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(  # noqa: UP032
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
            if args.dry_run:
                break


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(  # noqa: UP032
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)))
    return correct / len(test_loader.dataset)


test.__test__ = False  # the example's test(), not a pytest test


# -- the data (what torchvision's MNIST + ToTensor + Normalize give the example) ----------------


class Args:
    batch_size = 64
    test_batch_size = 1000
    epochs = 1
    lr = 1.0
    gamma = 0.7
    seed = 1
    log_interval = 10
    dry_run = False


def _data(n_train: int, n_test: int):
    """Fashion-MNIST's first images, as float32 NCHW normalised with the example's (0.1307,
    0.3081), and int64 labels; random images with a class-dependent pattern if it is absent."""
    try:
        from chainrule.datasets import fashion_mnist

        (x, y), (x_test, y_test) = fashion_mnist.load_data(path=fashion_mnist.SYSTEM_DIRS[0])
        x, y, x_test, y_test = x[:n_train], y[:n_train], x_test[:n_test], y_test[:n_test]
    except Exception:  # not installed: a learnable stand-in
        rng = np.random.default_rng(0)
        patterns = rng.random((10, 28, 28)) > 0.7
        y, y_test = rng.integers(0, 10, n_train), rng.integers(0, 10, n_test)
        x = (patterns[y] * 200 + rng.integers(0, 55, (n_train, 28, 28))).astype(np.uint8)
        x_test = (patterns[y_test] * 200 + rng.integers(0, 55, (n_test, 28, 28))).astype(np.uint8)

    def prepare(images, labels):
        images = (images.astype(np.float32) / 255 - 0.1307) / 0.3081
        return TensorDataset(torch.tensor(images[:, None]), torch.tensor(labels.astype(np.int64)))

    return prepare(x, y), prepare(x_test, y_test)


def test_pytorch_mnist_example_runs_and_learns(tmp_path, capsys):
    args = Args()
    torch.manual_seed(args.seed)
    device = "cpu"  # the example: torch.device("cuda" if use_cuda else "cpu")
    train_kwargs = {'batch_size': args.batch_size}
    test_kwargs = {'batch_size': args.test_batch_size}
    dataset1, dataset2 = _data(1000, 500)
    train_loader = DataLoader(dataset1, **train_kwargs)
    test_loader = DataLoader(dataset2, **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)

    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    accuracy = None
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        accuracy = test(model, device, test_loader)
        scheduler.step()

    torch_save(model.state_dict(), tmp_path / "mnist_cnn.npz")

    printed = capsys.readouterr().out
    assert "Train Epoch: 1 [0/1000 (0%)]" in printed and "Test set: Average loss" in printed
    assert accuracy > 0.4, printed  # chance is 0.1; this run reaches about 0.6
    assert scheduler.get_last_lr() == [pytest.approx(0.7)]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.7)
    # the saved state loads back into a fresh Net, which then predicts the same
    restored = Net()
    restored.load_state_dict(torch_load(tmp_path / "mnist_cnn.npz"))
    restored.eval()
    with torch.no_grad():
        x = dataset2.tensors[0][:8]
        np.testing.assert_array_equal(restored(x).numpy(), model(x).numpy())


def test_every_parameter_of_the_net_is_trained():
    """The optimizer made right after Net() holds all eight weights (eager build)."""
    model = Net()
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    names = [name for name, _ in model.named_parameters()]
    assert names == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                     "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert len(optimizer.params) == 8
    assert sum(p.size for p in model.parameters()) == 1_199_882  # as torch's Net
