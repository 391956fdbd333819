# The NAMD config reader's Tcl side: evaluates a config the way NAMD does, in a safe interpreter.
#
# Run by templates_app/namd_reader.py as `tclsh8.6 namd_reader.tcl` under CPU, memory and wall-clock
# limits. NAMD evaluates its config with Tcl 8.6 and turns every command Tcl does not know into a
# keyword setting; so does this reader, in a safe child interpreter (no files, no exec, no sockets),
# and it records what the config would do instead of doing it:
#   - keyword settings (`unknown`), with the file and line that set them;
#   - NAMD's own Tcl commands (run, minimize, reinitvels, cv, ...);
#   - what only the cluster can do (exec, open, file delete, python, cd) is recorded, never run;
#   - `source` of a file of the job is evaluated (the portal gives the files it holds); a file that
#     only the cluster will have (made by `exec`, or not held here) is recorded, and from then on
#     the reading "depends on the cluster": values that could not be known are marked, not guessed.
# Each top-level command is evaluated on its own, so one Tcl error does not hide the rest.
#
# Request on stdin (UTF-8): lines of `key field...` (fields base64), then a line `text`, then the
# config text to the end:
#   config PATH            the config's path in the job folder (NAMD runs in its folder)
#   file PATH LOCAL        a file of the job; LOCAL is where the portal holds it, empty if it does not
#   command NAME           a Tcl command NAMD registers (NAME as registered, not encoded)
#   limits COMMANDS SECONDS RECORDS
# Records on stdout, one a line, fields space-separated, strings base64 (UTF-8), "-" for none:
#   K file line cluster name value      a keyword setting (cluster: 1 if the reading depended on the cluster by then)
#   C file line name arg...             a NAMD command
#   X file line what word...            something only the cluster can do (exec, open, file, python, cd)
#   S file line path status             a `source`: read | missing | cluster | outside | loop
#   E file line code message            a Tcl error not explained by the cluster
#   Q file line message                 a Tcl error explained by something only the cluster has
#   M file line path                    a file an `exec` writes (a path in the job folder): the cluster makes it
#   D file line                         from here on the reading depends on what only the cluster has
#   L what                              a limit was reached (commands, time, records, size)

fconfigure stdin -translation lf -encoding utf-8
fconfigure stdout -translation lf -encoding utf-8

proc b64 {text} {
    if {$text eq ""} { return "=" }
    return [binary encode base64 [encoding convertto utf-8 $text]]
}
proc unb64 {text} {
    if {$text eq "" || $text eq "="} { return "" }
    return [encoding convertfrom utf-8 [binary decode base64 $text]]
}

set config_path job.namd
set files [dict create]
set made [dict create]
set commands {}
set max_commands 500000
set max_seconds 2
set max_records 20000
set max_source_bytes 4000000
set records 0
set depends_on_cluster 0
set stack {}
set sourcing {}

while {[gets stdin line] >= 0} {
    if {$line eq "text"} break
    set words [split $line " "]
    switch -- [lindex $words 0] {
        config { set config_path [unb64 [lindex $words 1]] }
        file { dict set files [unb64 [lindex $words 1]] [unb64 [lindex $words 2]] }
        command { lappend commands [lindex $words 1] }
        limits { lassign [lrange $words 1 end] max_commands max_seconds max_records }
    }
}
set text [read stdin]
set workdir [file dirname $config_path]
if {$workdir eq "."} { set workdir "" }

# ------------------------------------------------------------------ output

proc emit {type args} {
    global records max_records
    if {[incr records] > $max_records} {
        puts "L records"
        flush stdout
        exit 0
    }
    puts [join [list $type {*}$args] " "]
}

# The file and line of the command being run in the child: the deepest frame of the innermost
# file being evaluated (lines inside a proc body are reported at the proc's call).
proc where {} {
    global child stack
    set top [lindex $stack end]
    if {$top eq ""} { return [list "-" 0] }
    set depth [$child eval {info frame}]
    for {set level [expr {$depth - 1}]} {$level >= 1} {incr level -1} {
        set frame [$child eval [list info frame $level]]
        if {[dict get $frame type] ne "eval" || ![dict exists $frame line]} continue
        foreach context [lreverse $stack] {
            lassign $context path start base
            if {$level >= $base} {
                return [list $path [expr {$start + [dict get $frame line] - 1}]]
            }
        }
    }
    lassign $top path start
    return [list $path $start]
}

proc emit_here {type args} {
    lassign [where] path line
    emit $type [b64 $path] $line {*}$args
}

# ------------------------------------------------------------------ paths of the job

# A path as NAMD would open it (relative to the config's folder), normalized inside the job folder;
# "" when it is absolute or leaves the job folder.
proc job_path {path} {
    global workdir
    if {[string match /* $path] || [string match ~* $path]} { return "" }
    set parts {}
    foreach part [split [expr {$workdir eq "" ? $path : "$workdir/$path"}] /] {
        if {$part eq "" || $part eq "."} continue
        if {$part eq ".."} {
            if {[llength $parts] == 0} { return "" }
            set parts [lrange $parts 0 end-1]
            continue
        }
        lappend parts $part
    }
    return [join $parts /]
}

proc depend_on_cluster {} {
    global depends_on_cluster
    if {!$depends_on_cluster} { emit_here D }
    set depends_on_cluster 1
}

# ------------------------------------------------------------------ evaluation

set cluster_value "\u0001cluster\u0001"

proc evaluate {path text} {
    global child stack
    set number 0
    set chunk ""
    set start 1
    foreach line [split $text "\n"] {
        incr number
        if {$chunk eq ""} { set start $number }
        append chunk $line "\n"
        if {![info complete $chunk]} continue
        if {[string trim $chunk] ne ""} { evaluate_command $path $start $chunk }
        set chunk ""
    }
    if {[string trim $chunk] ne ""} {
        emit E [b64 $path] $start [b64 TCL_INCOMPLETE] \
            [b64 "this command never ends: a brace, bracket or quote opened here is not closed"]
    }
}

proc evaluate_command {path start chunk} {
    global child stack depends_on_cluster cluster_value
    set base [$child eval {info frame}]
    lappend stack [list $path $start $base]
    # the child catches its own errors, so their lines are the chunk's; a limit is not catchable there
    set stopped [catch {$child eval [list catch $chunk ::__message ::__options]} code]
    set stack [lrange $stack 0 end-1]
    if {$stopped} {
        emit L [expr {[string match "time limit*" $code] ? "time" : "commands"}]
        flush stdout
        exit 0
    }
    if {$code != 1} return
    set message [$child eval {set ::__message}]
    set line [expr {$start + [dict get [$child eval {set ::__options}] -errorline] - 1}]
    set cluster_made [expr {[string first $cluster_value $message] >= 0 || [string match {*"env(*} $message]}]
    if {!$cluster_made && !$depends_on_cluster} {
        emit E [b64 $path] $line [b64 TCL_ERROR] [b64 $message]
        return
    }
    emit Q [b64 $path] $line [b64 [string map [list $cluster_value "(a value only the cluster knows)"] $message]]
    # a keyword line whose value only the cluster knows (`cellBasisVector1 $a 0 0` after a file made
    # by exec) still sets that keyword: record it without a value
    set text [lindex [split $chunk "\n"] [expr {$line - $start}]]
    if {[regexp {^\s*([A-Za-z][A-Za-z0-9_-]*)\s} $text -> name]
        && [$child eval [list info commands $name]] eq "" && [$child eval [list info procs $name]] eq ""} {
        emit K [b64 $path] $line 1 [b64 $name] [b64 $cluster_value]
    }
}

# ------------------------------------------------------------------ what the child may call

proc keyword {name args} {
    global depends_on_cluster
    if {[lindex $args 0] eq "="} { set args [lrange $args 1 end] }
    # as NAMD: a word starting with # ends the value (`exclude scaled1-4 # comment`)
    set end [lsearch -glob $args "#*"]
    if {$end >= 0} { set args [lrange $args 0 [expr {$end - 1}]] }
    emit_here K $depends_on_cluster [b64 $name] [b64 [join $args " "]]
    return ""
}

proc namd_command {name args} {
    set fields {}
    foreach arg $args { lappend fields [b64 $arg] }
    emit_here C [b64 $name] {*}$fields
    switch -nocase -- $name {
        numpes - numnodes - numphysicalnodes - numreplicas {
            depend_on_cluster
            return 1
        }
        myreplica {
            depend_on_cluster
            return 0
        }
        exit {
            flush stdout
            exit 0
        }
    }
    return ""
}

proc cluster_action {what args} {
    global cluster_value made
    set fields {}
    foreach arg $args { lappend fields [b64 $arg] }
    emit_here X [b64 $what] {*}$fields
    depend_on_cluster
    if {$what eq "exec"} {
        # files the command writes (`> file`, `>> file`, `2> file`) will exist on the cluster
        set previous ""
        foreach word $args {
            set target ""
            if {$previous in {> >> 2> 2>> >& >>&}} {
                set target [job_path $word]
            } elseif {[regexp {^(?:2?>>?|>>?&)(.+)$} $word -> written]} {
                set target [job_path $written]
            }
            if {$target ne "" && ![dict exists $made $target]} {
                dict set made $target 1
                emit_here M [b64 $target]
            }
            set previous $word
        }
    }
    return $cluster_value
}

proc source_file {args} {
    global files made sourcing max_source_bytes
    set path [lindex $args end]
    set relative [job_path $path]
    lassign [where] from line
    if {$relative eq ""} {
        emit S [b64 $from] $line [b64 $path] outside
        depend_on_cluster
        return ""
    }
    if {$relative in $sourcing} {
        emit S [b64 $from] $line [b64 $relative] loop
        return ""
    }
    set status read
    if {[dict exists $made $relative]} {
        set status cluster
    } elseif {![dict exists $files $relative]} {
        set status missing
    } elseif {[dict get $files $relative] eq ""} {
        set status cluster
    }
    emit S [b64 $from] $line [b64 $relative] $status
    if {$status ne "read"} {
        depend_on_cluster
        return ""
    }
    set local [dict get $files $relative]
    if {[file size $local] > $max_source_bytes} {
        emit L size
        depend_on_cluster
        return ""
    }
    set channel [open $local r]
    fconfigure $channel -encoding utf-8 -translation auto
    set content [read $channel]
    close $channel
    lappend sourcing $relative
    evaluate $relative $content
    set sourcing [lrange $sourcing 0 end-1]
    return ""
}

# `file`: its path arithmetic is pure; questions about files are answered from the job's files;
# anything that changes files only the cluster can do.
proc file_command {subcommand args} {
    global files made
    switch -- $subcommand {
        join - tail - dirname - rootname - extension - split - pathtype {
            return [file $subcommand {*}$args]
        }
        exists - isfile - readable {
            set relative [job_path [lindex $args end]]
            return [expr {$relative ne "" && ([dict exists $files $relative] || [dict exists $made $relative])}]
        }
        isdirectory {
            set prefix "[job_path [lindex $args end]]/"
            foreach known [concat [dict keys $files] [dict keys $made]] {
                if {[string match "$prefix*" $known]} { return 1 }
            }
            return 0
        }
    }
    return [cluster_action file $subcommand {*}$args]
}

set child [interp create -safe]
interp limit $child commands -value $max_commands
interp limit $child time -seconds [expr {[clock seconds] + $max_seconds}]
foreach name $commands {
    if {$name in {unknown structure}} continue
    interp alias $child $name {} namd_command $name
}
foreach name {exec open socket cd pwd glob load} {
    catch {interp hide $child $name}
    interp alias $child $name {} cluster_action $name
}
interp alias $child python {} cluster_action python
interp alias $child source {} source_file
interp alias $child file {} file_command
proc ignore {args} { return "" }
interp alias $child puts {} ignore
interp alias $child ::__keyword {} keyword
$child eval {proc unknown {args} { tailcall ::__keyword {*}$args }}
# what NAMD's command line and environment hold is the cluster's: reading it marks the reading
proc cluster_read {name element operation} {
    global child cluster_value
    depend_on_cluster
    if {$element ne ""} { $child eval [list set ::${name}($element) $cluster_value] }
}
interp alias $child ::__cluster_read {} cluster_read
$child eval [list set argv $cluster_value]
$child eval [list set argc $cluster_value]
$child eval {array set env {}}
foreach name {argv argc env} {
    $child eval [list trace add variable ::$name read ::__cluster_read]
}
$child eval [list info script $config_path]

evaluate $config_path [string map [list "\r\n" "\n"] $text]
flush stdout
