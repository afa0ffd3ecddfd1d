// These tests load BPF programs, time real interpreters and drive a terminal: one at a time, Linux only.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
