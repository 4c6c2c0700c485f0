set -e
trilevel-train --token-keep 0.7 --epochs 3 --seed 0 --output /tmp/share_idle --quiet
python -c "while True: pass" & A=$!
python -c "while True: pass" & B=$!
trilevel-train --token-keep 0.7 --epochs 3 --seed 0 --output /tmp/share_busy --quiet
kill $A $B
