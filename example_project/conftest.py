# Keeps the example's helpers importable as `data` however pytest is invoked.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
