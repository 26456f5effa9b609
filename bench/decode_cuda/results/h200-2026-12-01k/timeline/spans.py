import sys, gzip, collections, statistics as st
recs=[]
for line in gzip.open(sys.argv[1],'rt'):
    if line.startswith('#'): continue
    k,n,i,cta,sm,t0,t1,t2=line.split()
    recs.append((int(k),int(n),i,int(cta),int(sm),int(t0),int(t1),int(t2)))
g=collections.OrderedDict()
for r in recs: g.setdefault((r[0],r[2]),[]).append(r)
L=[]
for (k,i),rs in g.items():
    L.append(dict(k=k,n=rs[0][1],c=len(rs),s0=min(r[5] for r in rs),s1=max(r[5] for r in rs),w0=min(r[6] for r in rs),w1=max(r[6] for r in rs),e0=min(r[7] for r in rs),e1=max(r[7] for r in rs),
      post=st.mean(r[7]-r[6] for r in rs), postmax=max(r[7]-r[6] for r in rs)))
L.sort(key=lambda x:x['e1'])
base=L[0]['s0']
names={1:'attn',2:'comb',10:'lin',11:'silu',12:'rope',13:'add',20:'norm',21:'addnorm'}
rel=lambda t:(t-base)/1000
prev=None
lim=int(sys.argv[2]) if len(sys.argv)>2 else 30
for j,x in enumerate(L[:lim]):
    span=(x['e1']-prev['e1'])/1000 if prev else 0
    print("%-8s N=%-6d ctas %4d start %7.2f..%7.2f waited %7.2f..%7.2f end %7.2f..%7.2f post mean %.2f max %.2f span %.2f"%(names.get(x['k'],x['k']),x['n'],x['c'],rel(x['s0']),rel(x['s1']),rel(x['w0']),rel(x['w1']),rel(x['e0']),rel(x['e1']),x['post']/1000,x['postmax']/1000,span))
    prev=x
print("total", (L[-1]['e1']-base)/1000)
