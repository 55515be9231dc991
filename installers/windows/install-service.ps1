<#
.SYNOPSIS
  Installs the Outpost terminal agent as a Windows service (run as Administrator).

.DESCRIPTION
  Performs the same steps as `terminal-agent service install` (agent/service/windows.ts is the
  definition both follow): copies terminal-agent.exe and the WinSW service host into
  %ProgramFiles%\Outpost, makes %ProgramData%\Outpost\agent readable by SYSTEM and
  Administrators only, enrolls when -Url and -Token are given, registers the service OutpostAgent
  (automatic start, restart on failure, OUTPOST_AGENT_DATA_DIR set) and starts it.

.EXAMPLE
  .\install-service.ps1 -Url https://control-plane.example -Token TOKEN -Name branch-01
#>
[CmdletBinding()]
param(
  [string]$BinaryPath = (Join-Path $PSScriptRoot 'terminal-agent.exe'),
  [string]$WrapperPath = (Join-Path $PSScriptRoot 'outpost-agent-service.exe'),
  [string]$Url,
  [string]$Token,
  [string]$Name,
  [switch]$Force,
  [switch]$NoStart
)
$ErrorActionPreference = 'Stop'

$ServiceName = 'OutpostAgent'
$DisplayName = 'Outpost terminal agent'
$Description = 'Runs requests from the Outpost control plane inside this network.'
$InstallDir = Join-Path $env:ProgramFiles 'Outpost'
$DataDir = Join-Path $env:ProgramData 'Outpost\agent'
$Executable = Join-Path $InstallDir 'terminal-agent.exe'
$Wrapper = Join-Path $InstallDir 'outpost-agent-service.exe'
$WrapperConfig = Join-Path $InstallDir 'outpost-agent-service.xml'

if ([bool]$Url -ne [bool]$Token) { throw '-Url and -Token go together: give both to enroll, or neither.' }

# Runs a native program; exit codes in $Ok are not failures (a re-run meets some of them).
function Invoke-Step([string]$Program, [string[]]$Arguments, [int[]]$Ok = @(0)) {
  & $Program @Arguments
  if ($Ok -notcontains $LASTEXITCODE) { throw "$Program failed with exit code $LASTEXITCODE" }
}

# An upgrade replaces files that a running service holds open (1060: no such service, 1062: not started).
Invoke-Step 'sc.exe' @('stop', $ServiceName) @(0, 1060, 1062)

New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
if ((Resolve-Path $BinaryPath).Path -ne $Executable) { Copy-Item -Force $BinaryPath $Executable }
if ((Resolve-Path $WrapperPath).Path -ne $Wrapper) { Copy-Item -Force $WrapperPath $Wrapper }

$xml = [Security.SecurityElement]
@(
  '<service>'
  "  <id>$ServiceName</id>"
  "  <name>$($xml::Escape($DisplayName))</name>"
  "  <description>$($xml::Escape($Description))</description>"
  "  <executable>$($xml::Escape($Executable))</executable>"
  '  <arguments>run</arguments>'
  "  <env name=`"OUTPOST_AGENT_DATA_DIR`" value=`"$($xml::Escape($DataDir))`"/>"
  '  <startmode>Automatic</startmode>'
  '  <stoptimeout>60 sec</stoptimeout>'
  "  <logpath>$($xml::Escape((Join-Path $DataDir 'logs')))</logpath>"
  '  <log mode="roll-by-size"><sizeThreshold>10240</sizeThreshold><keepFiles>8</keepFiles></log>'
  '</service>'
) -join "`r`n" | Set-Content -Encoding UTF8 -Path $WrapperConfig

# The data dir holds the terminal's keys: LocalSystem (S-1-5-18) and Administrators (S-1-5-32-544) only.
New-Item -ItemType Directory -Force -Path $DataDir | Out-Null
Invoke-Step 'icacls.exe' @($DataDir, '/inheritance:r', '/grant:r', '*S-1-5-18:(OI)(CI)F', '*S-1-5-32-544:(OI)(CI)F')

$enrolled = $false
if ($Url) {
  $enroll = @('enroll', '--url', $Url, '--token', $Token, '--data-dir', $DataDir)
  if ($Name) { $enroll += @('--name', $Name) }
  if ($Force) { $enroll += '--force' }
  Invoke-Step $Executable $enroll
  $enrolled = $true
} else {
  & $Executable status --data-dir $DataDir | Out-Null
  $enrolled = ($LASTEXITCODE -ne 2)
}

# New-Service hands the path to the service API as it is; a quoted path given to sc.exe would
# lose its quotes in Windows PowerShell 5.1's native argument passing. The path never changes,
# so an existing service only gets its start type, name and description brought up to date.
if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
  Set-Service -Name $ServiceName -StartupType Automatic -DisplayName $DisplayName -Description $Description
} else {
  New-Service -Name $ServiceName -BinaryPathName "`"$Wrapper`"" -StartupType Automatic `
    -DisplayName $DisplayName -Description $Description | Out-Null
}
Invoke-Step 'sc.exe' @('failure', $ServiceName, 'reset=', '86400', 'actions=', 'restart/5000/restart/5000/restart/60000')
Invoke-Step 'sc.exe' @('failureflag', $ServiceName, '1')
Invoke-Step 'reg.exe' @('add', "HKLM\SYSTEM\CurrentControlSet\Services\$ServiceName", '/v', 'Environment', '/t', 'REG_MULTI_SZ', '/d', "OUTPOST_AGENT_DATA_DIR=$DataDir", '/f')

if ($NoStart) {
  Write-Output 'Installed; not started (-NoStart).'
} elseif (-not $enrolled) {
  Write-Output 'Installed, not started: this machine is not enrolled yet. Run again with -Url and -Token.'
} else {
  Invoke-Step 'sc.exe' @('start', $ServiceName)
  Write-Output "Installed and started: sc.exe query $ServiceName"
}
