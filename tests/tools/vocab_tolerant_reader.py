import struct,re,sys
FFFD=b'\xef\xbf\xbd'
SZ={0:1,1:1,2:2,3:2,4:4,5:4,6:4,7:1,10:8,11:8,12:8}
FMT={0:'B',1:'b',2:'H',3:'h',4:'I',5:'i',6:'f',7:'?',10:'Q',11:'q',12:'d'}
class R:
    def __init__(s,d): s.d=d; s.p=0; s.fixed=[]
    def units(s,n):
        out=[];dmg=False
        while len(out)<n:
            if s.d[s.p:s.p+3]==FFFD: out.append(None); s.p+=3; dmg=True
            else: out.append(s.d[s.p]); s.p+=1
        return out,dmg
    def scalar(s,t):
        u,dmg=s.units(SZ[t])
        if dmg: return None
        return struct.unpack('<'+FMT[t],bytes(u))[0]
    def chain(s,p,depth):
        if depth==0: return True
        if s.d[p:p+3]==FFFD:
            if s.d[p+3:p+10]!=b'\0'*7: return False
            return any(s.chain2(p+10,b,depth) for b in range(0x80,0x100))
        nx=s.d[p:p+8]
        if len(nx)<8 or nx[2:8]!=b'\0'*6: return False
        n=nx[0]|nx[1]<<8
        if nx[0]>=0x80 and nx[1]!=0: return False
        return s.chain2(p+8,n,depth)
    def chain2(s,p,n,depth):
        v=s.d[p:p+n]
        if len(v)<n: return False
        if b'\0' in v: return False
        try: v.decode('utf-8')
        except: return False
        return s.chain(p+n,depth-1)
    def string(s):
        start=s.p
        u,dmg=s.units(8)
        if not dmg:
            n=struct.unpack('<Q',bytes(u))[0]; v=s.d[s.p:s.p+n]; s.p+=n; return v
        after=s.p
        idx=[i for i,x in enumerate(u) if x is None]
        if idx!=[0] or any(u[2:]): raise Exception('unrepairable length at %d'%start)
        good=[]
        for b in range(0x80+u[1]*256,0x100+u[1]*256):
            v=s.d[after:after+b]
            if b'\0' in v: continue
            try: v.decode('utf-8')
            except: continue
            if s.chain(after+b,4): good.append(b)
        if len(good)!=1: raise Exception('ambiguous length at %d: %s'%(start,good))
        s.fixed.append((start,good[0]))
        s.p=after+good[0]; return s.d[after:s.p]
KEY2=re.compile(rb'[\x08-\x40]\x00{7}((?:general|tokenizer)\.[a-z0-9_.]+)')
KEYRE=re.compile(rb'[\x01-\x7f]\x00{7}[a-z][a-z0-9_.]+')
def load(path):
    d=open(path,'rb').read(); r=R(d); r.p=8
    nt=r.scalar(10); nk=r.scalar(10)
    kv={};damaged={}
    for _ in range(nk):
        k=r.string().decode(); t=r.scalar(4)
        if t==9:
            et=r.scalar(4); n=r.scalar(10)
            if et==8:
                v=[]
                for i in range(n if n is not None else 10**9):
                    if n is None:
                        save=r.p
                        try:
                            nxt=r.string()
                        except Exception: nxt=b''
                        r.p=save
                        if nxt.startswith(b'tokenizer.ggml.'): break
                    try: v.append(r.string())
                    except Exception as e: raise Exception(k+str(e)+' at elem %d'%i)
                kv[k]=v
                if n is None: damaged[k+'.count']=len(v)
            else:
                if n is None: n=len(kv['tokenizer.ggml.tokens']); damaged[k+'.count']=1
                start=r.p
                v=[r.scalar(et) for _ in range(n)]
                if any(x is None for x in v):
                    m=None
                    for mm in KEY2.finditer(r.d,start):
                        L=mm.group(0)[0]
                        if len(mm.group(1))>=L: m=mm; break
                    if m: r.p=m.start()
                    else: r.p=len(r.d)
                kv[k]=v; 
                nd=sum(x is None for x in v)
                if nd: damaged[k]=nd
        elif t==8: kv[k]=r.string()
        else:
            kv[k]=r.scalar(t)
            if kv[k] is None: damaged[k]=1
    damaged['fixed_lengths']=len(r.fixed); return kv,damaged,r.p,len(d)
if __name__=='__main__':
    kv,dm,p,n=load(sys.argv[1])
    for k,v in kv.items():
        if isinstance(v,list): print(k,'array',len(v),v[:6])
        else: print(k,v)
    print('damaged',dm,'end',p,n)
