<#
.SYNOPSIS
  Removes the Outpost terminal agent's Windows service (run as Administrator).

.DESCRIPTION
  Performs the same steps as `terminal-agent service uninstall` (agent/service/windows.ts):
  stops and deletes the service OutpostAgent and removes %ProgramFiles%\Outpost. The data dir
  %ProgramData%\Outpost\agent (the enrollment and credentials) stays unless -Purge is given.
#>
[CmdletBinding()]
param([switch]$Purge)
$ErrorActionPreference = 'Stop'

$ServiceName = 'OutpostAgent'
$InstallDir = Join-Path $env:ProgramFiles 'Outpost'
$DataDir = Join-Path $env:ProgramData 'Outpost\agent'

function Invoke-Step([string]$Program, [string[]]$Arguments, [int[]]$Ok = @(0)) {
  & $Program @Arguments
  if ($Ok -notcontains $LASTEXITCODE) { throw "$Program failed with exit code $LASTEXITCODE" }
}

# 1060: no such service; 1062: not started.
Invoke-Step 'sc.exe' @('stop', $ServiceName) @(0, 1060, 1062)
Invoke-Step 'sc.exe' @('delete', $ServiceName) @(0, 1060)
Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $InstallDir
if ($Purge) {
  Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $DataDir
  Write-Output 'Removed the service and its data.'
} else {
  Write-Output "Removed the service; kept $DataDir (remove it with -Purge)."
}
