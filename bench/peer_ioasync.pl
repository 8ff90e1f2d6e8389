#!/usr/bin/perl
# SPDX-License-Identifier: MIT
# IO::Async contender (the seed itself): $loop->connect with
# IO::Async::Loop::Epoll, K in flight, each socket closed once connected.
#
#   peer_ioasync.pl [-d delay_ms] [-t max_seconds] HOST PORT N K WORKLOAD
#
# A numeric HOST is passed as a plain address (addr => {...}), skipping the
# resolver; a name goes through host/service and IO::Async's resolver.
# IO::Async tries addresses one after another (no racing), so -d is ignored.
# CPU is times() (user+system, this process and reaped children: the
# resolver's workers), at clock-tick resolution.
# Prints one JSON result line, like the C peers (bench/bench_common.h).
use strict;
use warnings;
use Getopt::Std;
use IO::Async::Loop::Epoll;
use Socket qw(inet_pton AF_INET AF_INET6);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my %opt = (t => 60);
getopts('d:t:', \%opt) or die "usage: $0 [-d ms] [-t s] HOST PORT N K WORKLOAD\n";
@ARGV == 5 or die "usage: $0 [-d ms] [-t s] HOST PORT N K WORKLOAD\n";
my ($host, $port, $n, $k, $workload) = @ARGV;
$k = $n if $k > $n;

my $loop = IO::Async::Loop::Epoll->new;
my %params;
if (defined inet_pton(AF_INET, $host)) {
    %params = (addr => { family => 'inet', socktype => 'stream', ip => $host, port => $port });
} elsif (defined inet_pton(AF_INET6, $host)) {
    %params = (addr => { family => 'inet6', socktype => 'stream', ip => $host, port => $port });
} else {
    %params = (host => $host, service => $port, socktype => 'stream');
}

my ($started, $done, $failed) = (0, 0, undef);
my $start_one;
$start_one = sub {
    $started++;
    $loop->connect(%params)->on_done(sub {
        my ($sock) = @_;
        close $sock;
        $done++;
        if ($done == $n) { $loop->stop; return }
        $start_one->() if $started < $n;
    })->on_fail(sub {
        $failed = "connect: @_";
        $loop->stop;
    })->retain;
};

my $bound = $loop->watch_time(after => $opt{t}, code => sub {
    $failed = "time bound of $opt{t}s hit after $done connects";
    $loop->stop;
});

my @c0 = times;
my $t0 = clock_gettime(CLOCK_MONOTONIC);
$start_one->() for 1 .. $k;
$loop->run;
my $wall = clock_gettime(CLOCK_MONOTONIC) - $t0;
my @c1 = times;
if ($failed) {
    print STDERR "io-async: $failed\n";
    exit 1;
}
$loop->unwatch_time($bound);
my $cpu = ($c1[0] + $c1[1] + $c1[2] + $c1[3]) - ($c0[0] + $c0[1] + $c0[2] + $c0[3]);
my $metric = $workload =~ /^he/
    ? sprintf('"time_to_connect_ms":%.3f', $wall * 1e3 / $n)
    : sprintf('"connects_per_s":%.1f', $n / $wall);
printf qq({"contender":"io-async","workload":"%s","n":%d,"k":%d,%s,"cpu_us_per_connect":%.2f}\n),
    $workload, $n, $k, $metric, $cpu * 1e6 / $n;
