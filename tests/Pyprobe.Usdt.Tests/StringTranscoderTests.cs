using System.Text;
using Pyprobe.Usdt.CodeGen;

namespace Pyprobe.Usdt.Tests;

/// <summary>
/// A Python str that is not ASCII reaches user space as CPython holds it (PEP 393: one, two or four bytes a character,
/// little-endian) and must come out as the same text in UTF-8, also when the kernel cut it inside a character.
/// </summary>
public class StringTranscoderTests
{
    [Theory]
    [InlineData("röund_é")]
    [InlineData("回合_函数")]
    [InlineData("🐍_\U00020000")]
    [InlineData("")]
    public void EachEncodingGivesTheSameText(string text)
    {
        if (text.All(c => c <= 0xFF))
            Assert.Equal(text, Utf8(StringEncoding.Latin1, Encoding.Latin1.GetBytes(text)));
        if (!text.Any(char.IsSurrogate))
            Assert.Equal(text, Utf8(StringEncoding.Utf16, Encoding.Unicode.GetBytes(text)));
        Assert.Equal(text, Utf8(StringEncoding.Utf32, Encoding.UTF32.GetBytes(text)));
        Assert.Equal(text, Utf8(StringEncoding.Utf8, Encoding.UTF8.GetBytes(text)));
    }

    [Fact]
    public void APartialLastCharacterIsDropped()
    {
        Assert.Equal("回", Utf8(StringEncoding.Utf16, Encoding.Unicode.GetBytes("回合")[..3]));
        Assert.Equal("a", Utf8(StringEncoding.Utf32, Encoding.UTF32.GetBytes("a🐍")[..7]));
    }

    /// <summary>A lone surrogate (a file name decoded with surrogateescape holds them) is U+FFFD, as Python's "replace" gives.</summary>
    [Fact]
    public void ALoneSurrogateIsTheReplacementCharacter()
    {
        byte[] raw = [0x61, 0x00, 0xE9, 0xDC, 0x62, 0x00]; // "a", U+DCE9, "b"
        Assert.Equal("a\uFFFDb", Utf8(StringEncoding.Utf16, raw));
    }

    /// <summary>Bytes returned earlier stay valid and right when the per-thread cache fills and starts over.</summary>
    [Fact]
    public void EarlierResultsSurviveTheCacheStartingOver()
    {
        var first = StringTranscoder.ToUtf8(StringEncoding.Utf16, Encoding.Unicode.GetBytes("函数_0")).ToArray();
        var kept = StringTranscoder.ToUtf8(StringEncoding.Utf16, Encoding.Unicode.GetBytes("函数_0"));
        for (var i = 1; i <= 5000; i++)
            Assert.Equal($"函数_{i}", Encoding.UTF8.GetString(StringTranscoder.ToUtf8(StringEncoding.Utf16, Encoding.Unicode.GetBytes($"函数_{i}"))));
        Assert.Equal("函数_0", Encoding.UTF8.GetString(kept));
        Assert.Equal(first, StringTranscoder.ToUtf8(StringEncoding.Utf16, Encoding.Unicode.GetBytes("函数_0")).ToArray());
    }

    private static string Utf8(StringEncoding encoding, byte[] raw) => Encoding.UTF8.GetString(StringTranscoder.ToUtf8(encoding, raw));
}
