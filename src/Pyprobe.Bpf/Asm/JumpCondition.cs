namespace Pyprobe.Bpf.Asm;

/// <summary>
/// The comparisons a conditional jump can make. Values equal the matching <see cref="JumpOperation"/> opcode bits
/// so conversion is a cast. Unsigned comparisons are the plain names; signed ones say so.
/// </summary>
public enum JumpCondition : byte
{
    /// <summary><c>jeq</c>: <c>dst == src</c></summary>
    Equal = JumpOperation.Equal,
    /// <summary><c>jgt</c>: <c>dst &gt; src</c> (unsigned)</summary>
    Greater = JumpOperation.Greater,
    /// <summary><c>jge</c>: <c>dst &gt;= src</c> (unsigned)</summary>
    GreaterOrEqual = JumpOperation.GreaterOrEqual,
    /// <summary><c>jset</c>: <c>(dst &amp; src) != 0</c></summary>
    BitsSet = JumpOperation.BitsSet,
    /// <summary><c>jne</c>: <c>dst != src</c></summary>
    NotEqual = JumpOperation.NotEqual,
    /// <summary><c>jsgt</c>: <c>dst &gt; src</c> (signed)</summary>
    SignedGreater = JumpOperation.SignedGreater,
    /// <summary><c>jsge</c>: <c>dst &gt;= src</c> (signed)</summary>
    SignedGreaterOrEqual = JumpOperation.SignedGreaterOrEqual,
    /// <summary><c>jlt</c>: <c>dst &lt; src</c> (unsigned)</summary>
    Less = JumpOperation.Less,
    /// <summary><c>jle</c>: <c>dst &lt;= src</c> (unsigned)</summary>
    LessOrEqual = JumpOperation.LessOrEqual,
    /// <summary><c>jslt</c>: <c>dst &lt; src</c> (signed)</summary>
    SignedLess = JumpOperation.SignedLess,
    /// <summary><c>jsle</c>: <c>dst &lt;= src</c> (signed)</summary>
    SignedLessOrEqual = JumpOperation.SignedLessOrEqual,
}
