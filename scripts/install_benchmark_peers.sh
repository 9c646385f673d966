#!/usr/bin/env bash
# Install the peers that `python -m benchmarks` compares against, into the active environment.
#   nnAudio: from PyPI as usual.
#   SpeechBrain (for Leaf): its torchaudio requirement cannot be met beside torch 2.13, so it is
#   installed without dependencies into .bench-peers/ (found by benchmarks/peers.py), with the
#   few pure-Python packages its import needs. Leaf itself is pure torch.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q 'nnAudio==0.3.4' 'librosa==0.11.0'
python -m pip install -q --no-deps --target .bench-peers \
    'speechbrain==1.1.*' hyperpyyaml ruamel.yaml pyyaml joblib sentencepiece packaging
echo "peers installed: nnAudio (environment), SpeechBrain (.bench-peers/)"
