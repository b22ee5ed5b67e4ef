# Perl: hashes, regexes, sort, sprintf, a forked child and its exit status, a pipe from a
# command, and exit 4 after a warning.
use strict;
use warnings;
my %count;
for my $i (1 .. 50000) {
    my $w = sprintf("w%03d", ($i * 7919) % 997);
    $count{$w}++;
}
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 4];
print "top: @top\n";
my $text = join(" ", map { "item$_=" . ($_ * 3) } 1 .. 2000);
my @m = $text =~ /item(\d+)=(\d+)/g;
printf "matches: %d, last %s=%s\n", scalar(@m) / 2, $m[-2], $m[-1];
my $pid = fork();
if ($pid == 0) {
    # Older than a few census intervals before it works and exits: a fork child that exits
    # within one interval sends nothing, by design (fork+exit stays cheap).
    select(undef, undef, undef, 0.3);
    my %words = map { ("k$_" => $_ * 2) } 1 .. 5000;
    print "child says hi, ", scalar(keys %words), " keys\n";
    exit 7;
}
waitpid($pid, 0);
printf "child exit %d\n", $? >> 8;
open(my $fh, "-|", "/usr/bin/seq", "1", "5") or die "seq: $!";
my @lines = <$fh>;
close($fh);
chomp @lines;
print "seq: @lines\n";
warn "a warning on stderr\n";
exit 4;
