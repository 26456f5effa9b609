import torch
torch.manual_seed(0)
shapes={'qkv3b':(5120,3072),'o3b':(3072,3072),'gu3b':(16384,3072),'down3b':(3072,8192)}
for rows in (518,600):
    for n,(N,K) in shapes.items():
        x=torch.randn(rows,K,device='cuda',dtype=torch.bfloat16)
        w=torch.randn(N,K,device='cuda',dtype=torch.bfloat16)
        for _ in range(3): y=x@w.t()
torch.cuda.synchronize()
