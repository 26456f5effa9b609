import sys, statistics as st
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
print("records", len(rows))
names = ["wait", "q", "K", "V", "loop", "ws", "end"]
d = {n: [] for n in names}
for r in rows:
    t = r[2:]
    if min(t) == 0: continue
    for k, n in enumerate(names): d[n].append((t[k + 1] - t[k]) / 1000)
for n in names:
    if d[n]: print("%-5s mean %.2f med %.2f min %.2f max %.2f" % (n, st.mean(d[n]), st.median(d[n]), min(d[n]), max(d[n])))
