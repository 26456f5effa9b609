# Per-launch CTA statistics of bench_decode_cuda --timeline stamp files (tl_*.txt.gz here):
# for each kernel kind (kind, n), means over its launches of the span (last CTA end minus the
# previous launch's), the first/last CTA's return from the wait and the first CTA's end (after
# the previous launch's end), the median/max CTA time after the wait, and how many CTAs started
# after the previous launch had ended (late_start: not resident while it ran).
# Usage: python3 ctas.py tl_3b_base.txt.gz tl_3b_new.txt.gz
import gzip
import sys, collections, statistics as st
def load(p):
    L = collections.OrderedDict()
    for line in (gzip.open(p, 'rt') if p.endswith('.gz') else open(p)):
        if line.startswith('#'): continue
        k, n, i, cta, sm, s, w, e = line.split()
        L.setdefault((int(k), int(n), i), []).append((int(cta), int(sm), int(s), int(w), int(e)))
    launches = []
    for key, c in L.items():
        launches.append((min(x[3] for x in c), key, c))
    launches.sort()
    return launches
for p in sys.argv[1:]:
    ls = load(p)
    agg = collections.defaultdict(list)
    prev_end = None
    for fw, key, c in ls:
        ends = [x[4] for x in c]; waits = [x[3] for x in c]; starts = [x[2] for x in c]
        last_end = max(ends)
        if prev_end:
            agg[key[:2]].append(dict(span=(last_end-prev_end)/1e3, fw=(min(waits)-prev_end)/1e3, lw=(max(waits)-prev_end)/1e3,
              med_post=st.median([e-w for w, e in zip(waits, ends)])/1e3, max_post=max(e-w for w, e in zip(waits, ends))/1e3,
              late_start=sum(1 for s in starts if s > prev_end), ctas=len(c), first_end=(min(ends)-prev_end)/1e3))
        prev_end = last_end
    print(p)
    for k, v in agg.items():
        m = lambda f: sum(x[f] for x in v)/len(v)
        print("  kind %d n %6d x%-3d span %6.2f firstwait %5.2f lastwait %5.2f medpost %6.2f maxpost %6.2f firstend %6.2f late_start %5.1f/%d" % (k[0], k[1], len(v), m('span'), m('fw'), m('lw'), m('med_post'), m('max_post'), m('first_end'), m('late_start'), v[0]['ctas']))
