import sys, statistics as st, collections
recs = []
for line in open(sys.argv[1]):
    k, i, n, cta, sm, t0, t1, t2 = line.split()
    recs.append((int(k), i, int(n), int(cta), int(sm), int(t0), int(t1), int(t2)))
if not recs: print("no records"); sys.exit()
ts = sorted(set(r[7] for r in recs)); d = [b - a for a, b in zip(ts, ts[1:]) if b > a]
print("records", len(recs), "timer min step ns", min(d) if d else None)
g = collections.OrderedDict()
for r in recs: g.setdefault((r[0], r[1]), []).append(r)
L = []
for (k, i), rs in g.items():
    L.append(dict(kind=k, n=rs[0][2], ctas=len(rs), sms=len(set(r[4] for r in rs)), t0=min(r[5] for r in rs), t0max=max(r[5] for r in rs),
                  t1=min(r[6] for r in rs), t1max=max(r[6] for r in rs), t2min=min(r[7] for r in rs), t2=max(r[7] for r in rs)))
L.sort(key=lambda x: x['t1'])
base = L[0]['t0']
names = {1: 'attn', 10: 'lin', 11: 'lin_silu', 12: 'lin_rope', 13: 'lin_ep3', 20: 'norm', 21: 'addnorm'}
agg = collections.defaultdict(lambda: collections.defaultdict(list))
prev = None
for j, x in enumerate(L):
    key = (names.get(x['kind'], x['kind']), x['n'])
    rel = lambda t: (t - base) / 1000
    rl = (x['t1'] - prev['t2']) / 1000 if prev else 0
    if j < 16 or j > len(L) - 4:
        print("%-9s N=%-6d ctas %4d sms %3d  start %8.2f..%8.2f  wait %8.2f..%8.2f  end %8.2f..%8.2f  | release %.2f post %.2f pre %.2f" % (
            key[0], x['n'], x['ctas'], x['sms'], rel(x['t0']), rel(x['t0max']), rel(x['t1']), rel(x['t1max']), rel(x['t2min']), rel(x['t2']), rl, (x['t2'] - x['t1']) / 1000, (x['t1'] - x['t0']) / 1000))
    a = agg[key]
    a['release'].append(rl); a['post'].append((x['t2'] - x['t1']) / 1000); a['span'].append((x['t2'] - (prev['t2'] if prev else x['t1'])) / 1000)
    a['pre'].append((x['t1'] - x['t0']) / 1000); a['waitspread'].append((x['t1max'] - x['t1']) / 1000); a['endspread'].append((x['t2'] - x['t2min']) / 1000)
    prev = x
print("total first start -> last end us %.1f" % ((L[-1]['t2'] - base) / 1000))
print("%-10s %6s %5s %8s %8s %8s %8s %8s %8s" % ("kernel", "N", "count", "release", "post", "span", "pre", "wspread", "espread"))
tot = 0
for key, a in agg.items():
    m = {k: st.mean(v) for k, v in a.items()}
    tot += sum(a['span'])
    print("%-10s %6d %5d %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f" % (key[0], key[1], len(a['post']), m['release'], m['post'], m['span'], m['pre'], m['waitspread'], m['endspread']))
print("sum of spans %.1f" % tot)
