; Inno Setup 6 script: a per-machine Windows installer for the one-folder bundle.
; Build on Windows (no Windows machine here; see docs/installer.md):
;   pyinstaller --noconfirm --distpath dist --workpath build\pyinstaller packaging\lesionviewer.spec
;   iscc /DAppVersion=0.1.0 packaging\windows\lesionviewer.iss
; Gives dist\lesionviewer-<version>-windows-x64-setup.exe. Silent install for IT:
;   lesionviewer-0.1.0-windows-x64-setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /LOG=install.log
; The folder is installed as built (no self-extracting payload at run time); sign both the
; setup .exe and dist\lesionviewer\*.exe with the organisation's certificate before shipping.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define Root "..\.."

[Setup]
AppId={{6C1D7B0E-5F3A-4E53-9C0B-4C8A2E1D9A71}
AppName=lesionviewer
AppVersion={#AppVersion}
AppVerName=lesionviewer {#AppVersion}
AppPublisher=lesionviewer developers
AppComments=Skin-lesion segmentation with a local diffusion model. Decision support, not a diagnosis.
DefaultDirName={autopf}\lesionviewer
DefaultGroupName=lesionviewer
DisableProgramGroupPage=yes
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#Root}\dist
OutputBaseFilename=lesionviewer-{#AppVersion}-windows-x64-setup
SetupIconFile={#Root}\resources\icons\lesionviewer.ico
UninstallDisplayIcon={app}\lesionviewer.exe
UninstallDisplayName=lesionviewer {#AppVersion}
LicenseFile={#Root}\LICENSE
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Files]
; Replace the whole folder on upgrade so no stale DLL from an older torch or Qt lingers.
Source: "{#Root}\dist\lesionviewer\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\lesionviewer"; Filename: "{app}\lesionviewer.exe"; IconFilename: "{app}\lesionviewer.exe"
Name: "{autodesktop}\lesionviewer"; Filename: "{app}\lesionviewer.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked

[UninstallDelete]
; Only what the installer put there; users' settings, logs and edits (in their profiles and
; next to their photos) are left alone.
Type: filesandordirs; Name: "{app}\_internal"
Type: files; Name: "{app}\selftest-failed.txt"

[Code]
// After copying: run the bundle's self-test (model hash, sample analysis, window offscreen)
// and tell IT if it fails, with the log file to look at.
procedure CurStepChanged(CurStep: TSetupStep);
var
  Code: Integer;
  Log: String;
begin
  if CurStep = ssPostInstall then begin
    Log := ExpandConstant('{tmp}\lesionviewer-selftest.txt');
    WizardForm.StatusLabel.Caption := 'Checking the installation (lesionviewer --selftest)...';
    if not Exec(ExpandConstant('{cmd}'),
                '/C ""' + ExpandConstant('{app}\lesionviewer-cli.exe') + '" --selftest --offscreen > "' + Log + '" 2>&1"',
                '', SW_HIDE, ewWaitUntilTerminated, Code) or (Code <> 0) then begin
      FileCopy(Log, ExpandConstant('{app}\selftest-failed.txt'), False);
      SuppressibleMsgBox('lesionviewer was installed but its self-test failed. Details: ' +
                         ExpandConstant('{app}\selftest-failed.txt'), mbError, MB_OK, IDOK);
    end;
  end;
end;
