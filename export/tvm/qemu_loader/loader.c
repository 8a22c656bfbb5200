/* Runs an exported TVM Relax library on tensors read from files: bpgan.export.tvm.qemu cross-compiles
 * it for aarch64 and runs it under qemu-aarch64, so the aarch64 build is checked against the reference.
 *
 *   loader LIB.so N_INPUTS IN_1 ... IN_k      (k a multiple of N_INPUTS: one call of main per group)
 *
 * Output j of a group is written to "<first input of the group>.out<j>"; one "main <g>: <s> s" line per
 * call goes to stdout (wall time inside the emulated process, loading excluded).
 * Tensor files: "BPGT", DLDataType (code u8, bits u8, lanes u16), ndim i32, shape i64[ndim], C-order data,
 * all little-endian (tvm.qemu writes and reads them).
 *
 * Plain C against the tvm-ffi C ABI (tvm/ffi/c_api.h) rather than the C++ headers: building it then
 * needs only the C cross compiler, and the ABI is the stable surface between the wheel's runtime and us.
 * The object layouts used below ({TVMFFIObject header, cell}) are the ones c_api.h documents.
 */
#define _POSIX_C_SOURCE 200809L /* posix_memalign, clock_gettime under -std=c11 */
#include <tvm/ffi/c_api.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DIMS 8
#define MAX_INPUTS 16

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "loader: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

/* The raised FFI error as "kind: message" on one line (the backtrace stays out of the report). */
static void fail_ffi(const char *what) {
  TVMFFIObjectHandle err = NULL;
  TVMFFIErrorMoveFromRaised(&err);
  if (err == NULL) fail(what, "failed without an error object");
  TVMFFIErrorCell *cell = (TVMFFIErrorCell *)((char *)err + sizeof(TVMFFIObject));
  fprintf(stderr, "loader: %s: %.*s: %.*s\n", what, (int)cell->kind.size, cell->kind.data,
          (int)cell->message.size, cell->message.data);
  exit(1);
}

static TVMFFIAny any_none(void) {
  TVMFFIAny a;
  memset(&a, 0, sizeof a);
  a.type_index = kTVMFFINone;
  return a;
}

static TVMFFIAny any_int(int64_t v, int32_t type_index) {
  TVMFFIAny a = any_none();
  a.type_index = type_index;
  a.v_int64 = v;
  return a;
}

static TVMFFIAny any_str(const char *s) {
  TVMFFIAny a = any_none();
  a.type_index = kTVMFFIRawStr;
  a.v_c_str = s;
  return a;
}

static TVMFFIAny any_obj(TVMFFIObjectHandle h) {
  TVMFFIAny a = any_none();
  a.type_index = ((TVMFFIObject *)h)->type_index;
  a.v_obj = (TVMFFIObject *)h;
  return a;
}

static TVMFFIAny call(TVMFFIObjectHandle f, TVMFFIAny *args, int n, const char *what) {
  TVMFFIAny r = any_none();
  if (TVMFFIFunctionCall(f, args, n, &r) != 0) fail_ffi(what);
  return r;
}

static TVMFFIObjectHandle global(const char *name) {
  TVMFFIByteArray b = {name, strlen(name)};
  TVMFFIObjectHandle f = NULL;
  if (TVMFFIFunctionGetGlobal(&b, &f) != 0) fail_ffi(name);
  if (f == NULL) fail("the TVM runtime does not register", name);
  return f;
}

/* mod[name], searching imported modules too (the VM executable sits in an import of the library). */
static TVMFFIObjectHandle function_of(TVMFFIObjectHandle mod, const char *name) {
  TVMFFIAny args[3] = {any_obj(mod), any_str(name), any_int(1, kTVMFFIBool)};
  TVMFFIAny r = call(global("ffi.ModuleGetFunction"), args, 3, name);
  if (r.type_index != kTVMFFIFunction) fail("the library has no function", name);
  return r.v_obj;
}

static void free_managed(DLManagedTensorVersioned *self) {
  free(self->dl_tensor.data);
  free(self->dl_tensor.shape);
  free(self);
}

static void read_exact(FILE *f, void *p, size_t n, const char *path) {
  if (n && fread(p, 1, n, f) != n) fail("short tensor file", path);
}

static size_t nbytes(const DLTensor *t) {
  size_t n = (t->dtype.bits * (size_t)t->dtype.lanes + 7) / 8;
  for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
  return n;
}

/* A file -> an ffi Tensor owning a 64-byte aligned copy (the alignment TVM's own allocator gives). */
static TVMFFIObjectHandle read_tensor(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) fail("cannot open", path);
  char magic[4];
  int32_t ndim;
  DLManagedTensorVersioned *m = calloc(1, sizeof *m);
  read_exact(f, magic, 4, path);
  if (memcmp(magic, "BPGT", 4) != 0) fail("not a tensor file", path);
  read_exact(f, &m->dl_tensor.dtype, sizeof(DLDataType), path);
  read_exact(f, &ndim, sizeof ndim, path);
  if (ndim < 0 || ndim > MAX_DIMS) fail("bad ndim in", path);
  m->dl_tensor.ndim = ndim;
  m->dl_tensor.shape = calloc(ndim ? ndim : 1, sizeof(int64_t));
  read_exact(f, m->dl_tensor.shape, ndim * sizeof(int64_t), path);
  size_t n = nbytes(&m->dl_tensor);
  if (posix_memalign(&m->dl_tensor.data, 64, n ? n : 64) != 0) fail("out of memory reading", path);
  read_exact(f, m->dl_tensor.data, n, path);
  fclose(f);
  m->version.major = DLPACK_MAJOR_VERSION;
  m->version.minor = DLPACK_MINOR_VERSION;
  m->deleter = free_managed;
  m->dl_tensor.device.device_type = kDLCPU;
  TVMFFIObjectHandle out = NULL;
  if (TVMFFITensorFromDLPackVersioned(m, 64, 1, &out) != 0) fail_ffi(path);
  return out;
}

static void write_tensor(const TVMFFIAny *v, const char *path) {
  if (v->type_index != kTVMFFITensor) fail("main returned a non-tensor output for", path);
  const DLTensor *t = (const DLTensor *)((char *)v->v_obj + sizeof(TVMFFIObject));
  int64_t stride = 1;  /* the writer assumes C order: refuse anything else instead of scrambling it */
  for (int i = t->ndim - 1; t->strides && i >= 0; stride *= t->shape[i--])
    if (t->shape[i] != 1 && t->strides[i] != stride) fail("non-contiguous output", path);
  FILE *f = fopen(path, "wb");
  if (f == NULL) fail("cannot write", path);
  int32_t ndim = t->ndim;
  size_t n = nbytes(t);
  if (fwrite("BPGT", 1, 4, f) != 4 || fwrite(&t->dtype, sizeof(DLDataType), 1, f) != 1 ||
      fwrite(&ndim, sizeof ndim, 1, f) != 1 ||
      (ndim && fwrite(t->shape, sizeof(int64_t), ndim, f) != (size_t)ndim) ||
      (n && fwrite((const char *)t->data + t->byte_offset, 1, n, f) != n) || fclose(f) != 0)
    fail("cannot write", path);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 4) fail("usage", "loader LIB.so N_INPUTS IN_1 ... IN_k");
  int n_in = atoi(argv[2]), k = argc - 3;
  if (n_in < 1 || n_in > MAX_INPUTS || k % n_in != 0) fail("bad N_INPUTS for the files given", argv[2]);

  /* What tvm.relax.VirtualMachine(load_module(lib), tvm.cpu()) does: load, fetch the executable,
   * initialize one CPU device (kDLCPU, id 0) with the pooled allocator (2). */
  TVMFFIAny arg = any_str(argv[1]);
  TVMFFIAny lib = call(global("ffi.ModuleLoadFromFile"), &arg, 1, argv[1]);
  TVMFFIAny vm = call(function_of(lib.v_obj, "vm_load_executable"), NULL, 0, "vm_load_executable");
  TVMFFIAny init[3] = {any_int(kDLCPU, kTVMFFIInt), any_int(0, kTVMFFIInt), any_int(2, kTVMFFIInt)};
  call(function_of(vm.v_obj, "vm_initialization"), init, 3, "vm_initialization");
  TVMFFIObjectHandle main_fn = function_of(vm.v_obj, "main");

  for (int g = 0; g < k / n_in; g++) {
    char **files = argv + 3 + g * n_in;
    TVMFFIAny xs[MAX_INPUTS];
    for (int i = 0; i < n_in; i++) xs[i] = any_obj(read_tensor(files[i]));
    double t0 = now();
    TVMFFIAny out = call(main_fn, xs, n_in, "main");
    double dt = now() - t0;
    char path[4096];
    if (out.type_index == kTVMFFIArray) {  /* several outputs: an Array of Any, layout {header, SeqCell} */
      const TVMFFISeqCell *seq = (const TVMFFISeqCell *)((char *)out.v_obj + sizeof(TVMFFIObject));
      for (int64_t j = 0; j < seq->size; j++) {
        snprintf(path, sizeof path, "%s.out%lld", files[0], (long long)j);
        write_tensor((const TVMFFIAny *)seq->data + j, path);
      }
    } else {
      snprintf(path, sizeof path, "%s.out0", files[0]);
      write_tensor(&out, path);
    }
    for (int i = 0; i < n_in; i++) TVMFFIObjectDecRef(xs[i].v_obj);
    TVMFFIObjectDecRef(out.v_obj);
    printf("main %d: %.6f s\n", g, dt);
  }
  return 0;
}
