// A C++ library for the demangling tests: run_kernel() (extern "C", called through ctypes) calls a member of a class
// template, which calls a function template in an anonymous namespace; both kept out of line so each is a frame.
// Their symbols are _ZNK12pyprobe_demo6MatrixIdE8multiplyEl and _ZN12pyprobe_demo12_GLOBAL__N_111spin_kernelILi4EEEddl.
#include <chrono>

namespace pyprobe_demo {
namespace {
template <int Unroll>
__attribute__((noinline)) double spin_kernel(double x, long iterations)
{
    for (long i = 0; i < iterations; i++)
        for (int u = 0; u < Unroll; u++) x = x * 0.999999 + 0.5;
    return x;
}
}

template <typename T>
struct Matrix {
    T seed;
    __attribute__((noinline)) T multiply(long milliseconds) const
    {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(milliseconds);
        T x = seed;
        while (std::chrono::steady_clock::now() < until) x = spin_kernel<4>(x, 200000);
        return x;
    }
};
}

extern "C" double run_kernel(long milliseconds)
{
    pyprobe_demo::Matrix<double> matrix{1.0};
    return matrix.multiply(milliseconds);
}
